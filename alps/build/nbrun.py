"""Execute a numbered notebook headlessly with papermill (used by the Makefile).

``python -m alps.build.nbrun NAME OUTPUT.ipynb --profile P [-p key value ...]``

* converts the jupytext ``py:percent`` source ``notebooks/NAME.py`` to a notebook;
* injects the profile's parameters (:func:`alps.config.notebook_parameters`: the
  ``notebooks.<NAME>`` section, and the ``pipeline`` section as the one ``pipeline`` mapping of
  the notebooks that declare it) overlaid with the ``-p`` pairs from the command line (values are
  parsed as YAML, so ``-p n_boot 500`` is an int); a configured or given name the notebook's
  parameters cell does not declare is an error naming it and the declared ones;
* runs it with the current interpreter's kernel and the ``Agg`` matplotlib backend;
* writes OUTPUT only when every cell succeeded (atomically); a failed run is kept beside it as
  ``OUTPUT.failed.ipynb`` for inspection and the command exits non-zero, so Make stops and leaves
  nothing that looks finished.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from .. import atomic, config, paths


def run_notebook(name: str, output, *, profile: str = "default", parameters=None,
                 cwd=None, log_output: bool = False, source=None) -> Path:
    """Execute ``notebooks/<name>.py`` (or ``source``) into ``output`` (see module docstring)."""
    import jupytext
    import papermill as pm

    source = Path(source) if source else paths.notebook_source(name)
    output = Path(output).resolve()
    nb = jupytext.read(source)
    declared = declared_parameters(nb)
    configured = config.notebook_parameters(profile, name)
    for section in ("pipeline", "design"):  # 01/02 run the pipeline, 03-07 read the design
        if section not in declared:
            configured.pop(section, None)
    for what, given in ((f"{paths.config_file(profile)} [notebooks.{name}]", configured),
                        ("-p", parameters or {})):
        unknown = sorted(set(given) - declared)
        if unknown:
            raise ValueError(f"{source}: no parameter(s) {unknown} (from {what}) in its parameters cell "
                             f"(declared: {sorted(declared)})")
    params = {**configured, **(parameters or {})}
    if "profile" in declared:
        params["profile"] = profile

    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    failed = output.with_name(output.stem + ".failed.ipynb")
    env_backup = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"

    def execute(tmp_out):
        with tempfile.TemporaryDirectory(prefix="alps-nb-") as tmp:
            src_nb = Path(tmp) / f"{name}.ipynb"
            jupytext.write(nb, src_nb)
            try:
                pm.execute_notebook(str(src_nb), tmp_out, parameters=params, kernel_name="python3",
                                    cwd=str(cwd or paths.REPO_ROOT), log_output=log_output, progress_bar=False)
            except Exception:
                if Path(tmp_out).exists():
                    shutil.copyfile(tmp_out, failed)
                raise

    try:
        atomic.write_with(output, execute)
    finally:
        if env_backup is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = env_backup
    if failed.exists():
        failed.unlink()
    return output


def declared_parameters(nb) -> set[str]:
    """Names assigned in the notebook's cell tagged ``parameters``."""
    import ast

    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)}
    raise ValueError("notebook has no cell tagged 'parameters'")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alps.build.nbrun", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="notebook name, e.g. 03_group_tests")
    parser.add_argument("output", help="executed notebook to write (.ipynb)")
    parser.add_argument("--profile", default="default", help="config profile (config/<profile>.yaml)")
    parser.add_argument("-p", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[],
                        help="parameter override; VALUE parsed as YAML")
    parser.add_argument("--log-output", action="store_true", help="stream cell output")
    args = parser.parse_args(argv)
    params = {k: yaml.safe_load(v) for k, v in args.p}
    try:
        run_notebook(args.name, args.output, profile=args.profile, parameters=params,
                     log_output=args.log_output)
    except Exception as exc:  # papermill's error already carries the failing cell
        print(f"alps.build.nbrun: notebook {args.name} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
