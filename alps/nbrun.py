"""Execute a numbered notebook headlessly with papermill (used by the Makefile).

``python -m alps.nbrun NAME OUTPUT.ipynb --profile P [-p key value ...]``

* converts the jupytext ``py:percent`` source ``notebooks/NAME.py`` to a notebook;
* injects the profile's parameters (:func:`alps.config.notebook_parameters`) overlaid with the
  ``-p`` pairs from the command line (values are parsed as YAML, so ``-p n_boot 500`` is an int);
* runs it with the current interpreter's kernel and the ``Agg`` matplotlib backend;
* writes OUTPUT only when every cell succeeded (atomic rename); a failed run is kept beside it as
  ``OUTPUT.failed.ipynb`` for inspection and the command exits non-zero, so Make stops and leaves
  nothing that looks finished.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import yaml

from . import config, paths


def run_notebook(name: str, output, *, profile: str = "default", parameters=None,
                 cwd=None, log_output: bool = False, source=None) -> Path:
    """Execute ``notebooks/<name>.py`` (or ``source``) into ``output`` (see module docstring)."""
    import jupytext
    import papermill as pm

    source = Path(source) if source else paths.notebook_source(name)
    output = Path(output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(source)
    declared = _declared_parameters(nb)
    # profile values reach only the notebooks that declare them; an explicit override of an
    # undeclared name is a typo and fails loudly
    params = {k: v for k, v in config.notebook_parameters(profile, name).items() if k in declared}
    unknown = sorted(set(parameters or {}) - declared)
    if unknown:
        raise ValueError(f"{source}: no parameter(s) {unknown} in its parameters cell "
                         f"(declared: {sorted(declared)})")
    params.update(parameters or {})
    if "profile" in declared:
        params["profile"] = profile

    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    failed = output.with_name(output.stem + ".failed.ipynb")
    env_backup = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"
    with tempfile.TemporaryDirectory(prefix="alps-nb-") as tmp:
        src_nb = Path(tmp) / f"{name}.ipynb"
        tmp_out = output.with_name(f".{output.stem}.partial.ipynb")
        jupytext.write(nb, src_nb)
        try:
            pm.execute_notebook(
                str(src_nb), str(tmp_out), parameters=params, kernel_name="python3",
                cwd=str(cwd or paths.REPO_ROOT), log_output=log_output, progress_bar=False,
            )
        except Exception:
            if tmp_out.exists():
                os.replace(tmp_out, failed)
            raise
        finally:
            if env_backup is None:
                os.environ.pop("MPLBACKEND", None)
            else:
                os.environ["MPLBACKEND"] = env_backup
    os.replace(tmp_out, output)
    if failed.exists():
        failed.unlink()
    return output


def _declared_parameters(nb) -> set[str]:
    """Names assigned in the notebook's cell tagged ``parameters``."""
    import ast

    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)}
    raise ValueError("notebook has no cell tagged 'parameters'")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alps.nbrun", description=__doc__,
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
        print(f"alps.nbrun: notebook {args.name} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
