"""``results/report.html``: one page linking every executed notebook (rendered to HTML), table
and figure, with the reproduction table, software versions and the parameters used.

``python -m alps.build.report --profile default --out-dir results --data-dir data/default --output results/report.html``
"""
from __future__ import annotations

import argparse
import html
import json
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
import yaml

from .. import __version__, atomic, config
from ..pipeline.provenance import split_kv

PACKAGES = ("alps", "numpy", "scipy", "nibabel", "dipy", "nilearn", "antspyx", "pandas",
            "statsmodels", "pingouin", "scikit-posthocs", "neuroCombat", "matplotlib", "seaborn", "papermill", "jupytext")


def software_versions() -> dict[str, str]:
    """Installed versions of the packages the analysis depends on (plus Python)."""
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _render_notebooks(nb_dir: Path) -> list[Path]:
    from nbconvert import HTMLExporter
    import nbformat

    exporter = HTMLExporter()
    written = []
    for nb_path in sorted(nb_dir.glob("[0-9][0-9]_*.ipynb")):
        if nb_path.name.endswith(".failed.ipynb"):
            continue
        body, _ = exporter.from_notebook_node(nbformat.read(nb_path, as_version=4))
        written.append(atomic.write_text(nb_path.with_suffix(".html"), body))
    return written


def fmt_number(value, *, p_value: bool = False) -> str:
    """A number for people: 3 significant digits; a p-value below 0.001 as "< 0.001"; integers as
    integers; text (e.g. "MO > HC > VM", "<0.001") as given; missing as "—"."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if p_value and value < 0.001:
        return "< 0.001"
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


#: headline statistics in words (:class:`alps.stats.Headline`), without their group or variable.
STATISTIC_WORDS = {
    "n": "number of subjects", "mean_alps": "mean ALPS index", "alps_order": "order of the group means",
    "omnibus_test": "omnibus test of ALPS across groups", "omnibus_p": "p of the omnibus test",
    "reg_b": "regression coefficient of", "reg_p": "p of the regression coefficient of",
    "reg_robust_se": "regression standard errors", "r": "correlation of ALPS with",
    "p": "p of the correlation of ALPS with", "r_method": "method of the correlation of ALPS with",
    "indirect": "indirect (mediated) effect a·b", "proportion_mediated": "proportion mediated",
    "proportion_mediated_ci_low": "proportion mediated, CI lower bound",
    "proportion_mediated_ci_high": "proportion mediated, CI upper bound"}


def quantity_label(q, design) -> str:
    """A headline quantity (:class:`alps.stats.Headline`) in words, from its fields and the design:
    ``reg_b`` of ``duration_years`` → "regression coefficient of headache duration (years)"."""
    words = STATISTIC_WORDS.get(q.statistic, q.key or q.statistic)
    if q.variable is not None:
        if design.contrast is not None and q.variable == design.contrast.name:
            var = f"{design.contrast.level} vs {design.contrast.reference} ({q.variable})"
        else:
            v = design.variable(q.variable)
            var = f"{v.label} ({v.unit})" if v.unit else v.label
        words = f"{words} {var}"
    if q.group is not None:
        words = f"{words}, {design.name_of(q.group)}"
    return words


def headline_html(out_dir: Path, design) -> str:
    """The reproduction table for people, with a note on its columns: quantities in words (from
    the headline records, :class:`alps.stats.Headline`), numbers to 3 significant digits (p as
    "< 0.001"), and whether each measured value lies inside the planted truth's 95 % CI
    (``truth_check.csv``). Columns that cannot apply to the cohort — ``paper`` without published
    values, the truth columns without a planted truth — are left out."""
    from ..stats import headline_quantities

    tab = out_dir / "tables"
    repro = pd.read_csv(tab / "reproduction.csv", dtype=str, keep_default_na=False)
    quantities = {q.key: q for q in headline_quantities(design)}
    check = {}
    if (tab / "truth_check.csv").is_file():
        tc = pd.read_csv(tab / "truth_check.csv")
        if "quantity" in tc.columns:
            check = {r.quantity: r for r in tc.itertuples(index=False)}
    rows = []
    for r in repro.itertuples(index=False):
        q = quantities.get(r.quantity)  # a published value the design does not compute: its key
        is_p = q is not None and q.is_p_value
        c = check.get(r.quantity)
        ci = (f"{fmt_number(c.truth_ci_low)} to {fmt_number(c.truth_ci_high)}" if c is not None else "")
        rows.append({"quantity": quantity_label(q, design) if q is not None else r.quantity,
                     "paper": fmt_number(r.paper or None, p_value=is_p),
                     "planted truth": fmt_number(r.truth or None, p_value=is_p),
                     "truth 95 % CI": ci, "measured": fmt_number(r.measured or None, p_value=is_p),
                     "inside truth CI": ("yes" if c.inside else "NO") if c is not None else ""})
    table = pd.DataFrame(rows)
    # a column that cannot apply to this cohort (no published values, no planted truth) is left out,
    # not shown as a column of dashes
    table = table.drop(columns=[c for c in table.columns[1:] if table[c].isin(["—", ""]).all()])
    meaning = {"paper": "the published values (the design's <code>published</code>)",
               "planted truth": "the same analysis on the simulation's planted ALPS",
               "inside truth CI": "whether the measured value lies in the 95 % CI of the planted-truth value "
                                  "(<code>truth_check.csv</code>)"}
    note = "; ".join(f"{c}: {meaning[c]}" for c in table.columns if c in meaning)
    return (f"<p class=note>{note + '. ' if note else ''}Numbers to 3 significant digits.</p>"
            + _scroll(table.to_html(index=False, border=0, escape=True)))


def _scroll(table_html: str) -> str:
    """A table in a box of the page's width that scrolls sideways when the table is wider."""
    return f"<div class=scroll>{table_html}</div>"


def skipped_analyses(out_dir: Path, design) -> list[str]:
    """Every analysis not run, with its reason: those the design does not declare
    (:meth:`~alps.stats.design.StudyDesign.skipped`) and those the data could not support (the
    note of a table written instead, :func:`alps.stats.sizes.table_note`)."""
    from ..stats.sizes import SKIPPED, table_note

    out = list(design.skipped().values()) if design is not None else []
    for f in sorted((out_dir / "tables").glob("*.csv")):
        note = table_note(pd.read_csv(f))
        if note and SKIPPED in note and note not in out:
            out.append(note)
    return out


def failed_scans(out_dir: Path) -> list[str]:
    """How many scans failed (``alps.tsv``) and how many subjects the statistics excluded
    (``exclusions.csv``), with where to look; empty when none."""
    tab = Path(out_dir) / "tables"
    lines = []
    if (tab / "alps.tsv").is_file():
        alps = pd.read_csv(tab / "alps.tsv", sep="\t", dtype=str, keep_default_na=False)
        bad = int((alps["status"] != "ok").sum()) if "status" in alps.columns else 0
        if bad:
            lines.append(f"{bad} of {len(alps)} scans failed, see {tab / 'exclusions.csv'} "
                         f"(errors in {tab / 'alps.tsv'})")
    if (tab / "exclusions.csv").is_file():
        n_excluded = len(pd.read_csv(tab / "exclusions.csv"))
        if n_excluded:
            lines.append(f"{n_excluded} participant(s) excluded from the statistics, see {tab / 'exclusions.csv'}")
    return lines


#: columns that name a row of a table with a ``caution`` column, in the order they are shown
_ROW_NAME = ("group", "kind", "outcome", "x", "m", "y", "n")


def cautions(out_dir: Path) -> list[str]:
    """Every caution of the tables (their ``caution`` column, :mod:`alps.stats.sizes`): one item
    per table and caution, naming the rows it concerns (the distinct values of their
    identifying columns, e.g. "correlations.csv (group VM, MO; kind bivariate; ...): residual df 6
    < 10")."""
    items = []
    for f in sorted((out_dir / "tables").glob("*.csv")):
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
        if "caution" not in df.columns:
            continue
        flagged = df[df["caution"] != ""]
        for caution, rows in flagged.groupby("caution", sort=False):
            name = "; ".join(f"{c} {', '.join(dict.fromkeys(v for v in rows[c] if v))}" for c in _ROW_NAME
                             if c in rows.columns and (rows[c] != "").any())
            items.append(f"{f.name} ({name}): {caution}")
    return items


def _table_html(path: Path, max_rows: int = 40) -> str:
    sep = "\t" if path.suffix == ".tsv" else ","
    return _table_html_df(pd.read_csv(path, sep=sep), max_rows)


def provenance_html(path: Path, link: str) -> str:
    """The provenance section: package versions, stage parameters (each distinct set with the
    number of scans that used it) and the SHA-256 of every scan's inputs (first 12 hex digits)."""
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    parts = [f"<h2>Provenance (<a href='{link}'>provenance.tsv</a>)</h2>",
             f"<p>{len(df)} scans. Every derivative also has its own JSON record with the same "
             "information (<code>sub-*/dwi/*_desc-preprocess.json</code>, <code>*_desc-alps.json</code>).</p>"]
    for col, title in (("versions", "Package versions"), ("preprocess_parameters", "Pre-processing parameters"),
                       ("measure_parameters", "Measurement parameters")):
        if col not in df.columns:
            continue
        sets = df[~df[col].isin(["", "n/a"])].groupby(col, sort=True).size().reset_index(name="scans")
        parts.append(f"<h3>{title}</h3>")
        if sets.empty:
            parts.append("<p class=note>none recorded (no scan finished this stage)</p>")
            continue
        table = pd.DataFrame([split_kv(t) for t in sets[col]]).T
        table.columns = [f"set {i + 1} ({n} scans)" for i, n in enumerate(sets["scans"])]
        table.index.name = "name"
        parts.append(_scroll(table.reset_index().to_html(index=False, border=0, na_rep="")))
    hashes = df[[c for c in ("participant_id", "session_id", "status", "dwi_sha256", "bval_sha256", "bvec_sha256")
                 if c in df.columns]].copy()
    for c in ("dwi_sha256", "bval_sha256", "bvec_sha256"):
        if c in hashes.columns:
            hashes[c] = hashes[c].str[:12]
    parts.append("<h3>Inputs (SHA-256, first 12 hex digits)</h3>"
                 + _table_html_df(hashes))
    return "".join(parts)


def dictionary_html(table: Path, rel=str) -> str:
    """The columns of a table in words, from the BIDS data dictionary beside it (``alps.json``
    beside ``alps.tsv``, written from :mod:`alps.pipeline.columns`); empty when it has none."""
    path = table.with_suffix(".json")
    if table.suffix != ".tsv" or not path.is_file():
        return ""
    entries = json.loads(path.read_text())
    items = "".join(f"<dt><code>{html.escape(k)}</code>" + (f" ({html.escape(e['Units'])})" if e.get("Units") else "")
                    + f"</dt><dd>{html.escape(e.get('Description', ''))}</dd>" for k, e in entries.items())
    return (f"<details><summary>Columns ({len(entries)}; <a href='{rel(path)}'>{html.escape(path.name)}</a>)"
            f"</summary><dl class=note>{items}</dl></details>")


def _table_html_df(df, max_rows: int = 40) -> str:
    """A table for the page: numbers to 3 significant digits — also those of a column that mixes
    numbers and text (``reproduction.csv``) — in a box that scrolls sideways when it is wider."""
    note = ""
    if len(df) > max_rows:
        note = f"<p class=note>first {max_rows} of {len(df)} rows; full table in the file.</p>"
        df = df.head(max_rows)
    df = df.copy()
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]):
            df[c] = [fmt_number(v) if isinstance(v, str) and _is_number(v) else v for v in df[c]]
    return _scroll(df.to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="", border=0)) + note


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def build_report(out_dir, *, profile: str = "default", data_dir=None, output=None, notes=()) -> Path:
    """Write the report page and the notebooks' HTML renderings; returns the page's path.
    ``notes`` (sentences) are shown at the top, e.g. the simulation-only products skipped."""
    out_dir = Path(out_dir)
    output = Path(output) if output else out_dir / "report.html"
    rel = lambda p: os.path.relpath(p, output.parent)  # noqa: E731
    notebooks = _render_notebooks(out_dir / "notebooks")
    tables = sorted((out_dir / "tables").glob("*.csv")) + sorted((out_dir / "tables").glob("*.tsv"))
    provenance = out_dir / "tables" / "provenance.tsv"
    tables = [t for t in tables if t != provenance]  # shown in its own section
    figures = sorted((out_dir / "figures").glob("*.png"))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>alps report</title><style>",
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:12px;margin:.5em 0}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
        "th{background:#f4f4f4}img{max-width:100%;border:1px solid #eee}"
        ".scroll{max-width:100%;overflow-x:auto;margin:.5em 0}.scroll table{margin:0}"
        ".caution{color:#9a4a00}"
        ".note{color:#666;font-size:12px}pre{background:#f7f7f7;padding:1em;font-size:12px}",
        "</style></head><body>",
        f"<h1>alps report — profile <code>{html.escape(profile)}</code></h1>",
        f"<p>Generated by alps {html.escape(__version__)} from the inputs in "
        f"<code>{html.escape(str(data_dir or ''))}</code>. Every number below was computed by the "
        "notebooks; nothing is typed in except the published values in the reproduction table's "
        "<em>paper</em> column.</p>",
    ]
    notes = [*notes, *(f"{line[:1].upper()}{line[1:]}." for line in failed_scans(out_dir))]
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")

    from ..stats.design import from_profile

    design = from_profile(profile) if config.load_profile(profile).get("design") else None
    repro = out_dir / "tables" / "reproduction.csv"
    if repro.is_file() and design is None:  # a profile without a design: the table as written
        parts += ["<h2>Headline results</h2>", _table_html(repro)]
    elif repro.is_file():
        parts += ["<h2>Headline results</h2>", headline_html(out_dir, design)]
    skipped = skipped_analyses(out_dir, design)
    if skipped:
        from ..stats.sizes import describe_minimum_sizes

        parts.append("<h2>Analyses not run</h2><ul>" + "".join(f"<li>{html.escape(v)}</li>" for v in skipped)
                     + "</ul>" + ("" if design is None else
                                  "<p class=note>Minimum sizes of this design (<code>alps.stats.sizes</code>; "
                                  f"complete cases): {html.escape(describe_minimum_sizes(design))}.</p>"))
    caution = cautions(out_dir)
    if caution:
        parts.append("<h2>Cautions: small samples</h2><p class=note>These analyses ran, but on fewer subjects "
                     "than their estimates can bear: residual df below 10, fewer than 10 subjects per predictor "
                     "(Harrell 2015), subjects with Cook's distance above 1 (<code>alps.stats.sizes</code>). "
                     "Read their numbers as exploratory.</p><ul class=caution>"
                     + "".join(f"<li>{html.escape(c)}</li>" for c in caution) + "</ul>")
    parts.append("<h2>Notebooks</h2><ol>")
    parts += [f"<li><a href='{rel(p)}'>{html.escape(p.stem)}</a></li>" for p in notebooks]
    parts.append("</ol><h2>Figures</h2>")
    for fig in figures:
        pdf = fig.with_suffix(".pdf")
        parts.append(f"<h3>{html.escape(fig.stem)}</h3><p><a href='{rel(fig)}'>PNG</a>"
                     + (f" · <a href='{rel(pdf)}'>PDF</a>" if pdf.exists() else "")
                     + f"</p><img src='{rel(fig)}' alt='{html.escape(fig.stem)}'>")
    parts.append("<h2>Tables</h2>")
    for tab in tables:
        parts.append(f"<h3><a href='{rel(tab)}'>{html.escape(tab.name)}</a></h3>{_table_html(tab)}"
                     + dictionary_html(tab, rel))
    key = out_dir / "tables" / "key_numbers.json"
    if key.is_file():
        parts.append(f"<h2>Key numbers (<a href='{rel(key)}'>JSON</a>)</h2>"
                     f"<pre>{html.escape(json.dumps(json.loads(key.read_text()), indent=2))}</pre>")
    parts.append("<h2>Parameters</h2><pre>"
                 + html.escape(yaml.safe_dump(config.load_profile(profile), sort_keys=False)) + "</pre>")
    if provenance.is_file():
        parts.append(provenance_html(provenance, rel(provenance)) + dictionary_html(provenance, rel))
    parts.append("<h2>Software versions</h2>" + pd.DataFrame(
        sorted(software_versions().items()), columns=["package", "version"]).to_html(index=False, border=0))
    parts.append("</body></html>")
    return atomic.write_text(output, "\n".join(parts))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alps.build.report", description=__doc__)
    ap.add_argument("--profile", default="default")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--output", default=None)
    args = ap.parse_args(argv)
    path = build_report(args.out_dir, profile=args.profile, data_dir=args.data_dir, output=args.output)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
