"""Execute a numbered notebook headlessly with papermill (used by the Makefile).

``python -m alps.build.nbrun NAME OUTPUT.ipynb --profile P [-p key value ...]``

* converts the jupytext ``py:percent`` source ``notebooks/NAME.py`` to a notebook;
* injects the profile's parameters (:func:`alps.config.notebook_parameters`: the
  ``notebooks.<NAME>`` section, and the ``pipeline`` section as the one ``pipeline`` mapping of
  the notebooks that declare it) overlaid with the ``-p`` pairs from the command line (values are
  parsed as YAML, so ``-p n_boot 500`` is an int); a configured or given name the notebook's
  parameters cell does not declare is an error naming it and the declared ones;
* refuses to mix given and default paths: once one path parameter is given, every input and
  product of the notebook must be (:func:`check_paths_complete`), so nothing lands in the default
  build's ``results/`` by omission;
* resolves relative path parameters given with ``-p`` (``..._dir``, ``..._csv``, ``..._tsv``,
  ``..._json``, ``..._table``, ``participants``) against the current folder, not the repository
  (the kernel runs in the repository's root);
* runs it with the current interpreter's kernel (over IPC sockets in a temporary folder, so no
  unencrypted-TCP warning) and the ``Agg`` matplotlib backend, showing a per-cell progress bar and
  the cells' standard error (warnings such as the excluded subjects, per-subject progress) on
  the console;
* writes OUTPUT only when every cell succeeded (atomically); a failed run is kept beside it as
  ``OUTPUT.failed.ipynb`` for inspection and the command exits non-zero, so Make stops and leaves
  nothing that looks finished.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from .. import atomic, config, paths


#: parameter-name endings (and names) that hold a path: relative values are taken from the current folder.
PATH_SUFFIXES = ("_dir", "_csv", "_tsv", "_json", "_table")
PATH_NAMES = ("participants",)


def is_path_parameter(name: str) -> bool:
    """Whether a notebook parameter holds a file or folder path (by its name)."""
    return name in PATH_NAMES or name.endswith(PATH_SUFFIXES)


def absolute_paths(parameters, base=None) -> dict:
    """``parameters`` with every relative, non-empty path value (:func:`is_path_parameter`) made
    absolute against ``base`` (default: the current folder)."""
    out = dict(parameters or {})
    for k, v in out.items():
        if is_path_parameter(k) and isinstance(v, str) and v:
            out[k] = str(paths.from_folder(v, base))
    return out


def check_paths_complete(declared, given, source) -> None:
    """Refuse a run that gives some paths but leaves others of the notebook's inputs and products
    (those of :func:`alps.paths.products`) empty: empty, they are the profile's default locations,
    so the run would mix the user's files with the default build's and overwrite its tables.
    ``None`` counts as given (an input that does not exist)."""
    named = [k for k, v in given.items() if is_path_parameter(k) and v != ""]
    if not named:
        return
    missing = sorted(k for k in declared if is_path_parameter(k) and k in paths.products() and given.get(k, "") == "")
    if missing:
        raise ValueError(f"{source}: path(s) {sorted(named)} given but not {missing}: left empty these are the "
                         "profile's default locations (its data/results), which this run would read or overwrite; "
                         "give every path (-p NAME PATH, or -p NAME null for an input that does not exist), or run "
                         "the whole series with 'alps paper --bids DIR --out DIR'")


class ConsoleLines:
    """The kernel's standard error on the console beside papermill's per-cell progress bar.

    A whole line of the kernel (a warning, "7 of 13 scans failed") is printed on a line of its
    own: the cell bar is cleared before it and redrawn after it (``tqdm.external_write_mode``). A
    line the kernel redraws in place (its own progress bar: ``\\r`` updates, no newline) takes the
    bar's line until the kernel ends it. Written straight to the console, a warning was appended
    to whatever progress line the console was on.
    """

    def __init__(self, stream):
        self.stream = stream
        self.partial = ""  # the kernel's unfinished line
        self.shown = 0  # length of the part of it on the console

    def _erase(self):
        if self.shown:
            self.stream.write("\r" + " " * self.shown + "\r")
            self.shown = 0

    def write(self, text: str) -> int:
        from tqdm.auto import tqdm

        *lines, self.partial = (self.partial + text).split("\n")
        with tqdm.get_lock():
            if lines:
                with tqdm.external_write_mode(file=self.stream, nolock=True):  # bars cleared, then redrawn
                    self._erase()
                    for line in lines:
                        self.stream.write(line.rsplit("\r", 1)[-1] + "\n")
            current = self.partial.rsplit("\r", 1)[-1]
            if current:
                if not self.shown:  # the kernel's progress line replaces the cell bar's
                    for inst in list(getattr(tqdm, "_instances", [])):
                        if getattr(inst, "fp", None) == self.stream:
                            inst.clear(nolock=True)
                self.stream.write("\r" + current.ljust(self.shown))
                self.shown = len(current)
        self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _kernel_manager_class(ip_prefix: str, stderr):
    """A kernel manager whose kernel listens on IPC sockets under ``ip_prefix`` (not TCP) and
    writes its own standard error (the kernel's messages, not the cells': those reach the
    notebook) to the open file ``stderr``."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kw):
            super().__init__(transport="ipc", ip=ip_prefix, **kw)

        async def start_kernel(self, **kw):  # kw: Popen's keyword arguments among others
            return await super().start_kernel(**{"stderr": stderr, **kw})

    return IPCKernelManager


def run_notebook(name: str, output, *, profile: str = "default", parameters=None,
                 cwd=None, log_output: bool = False, source=None, progress: bool = True) -> Path:
    """Execute ``notebooks/<name>.py`` (or ``source``) into ``output`` (see module docstring).

    Relative path parameters are resolved against the current folder (:func:`absolute_paths`);
    with ``progress`` a per-cell progress bar and the cells' standard error go to ``sys.stderr``."""
    import jupytext
    import papermill as pm

    parameters = absolute_paths(parameters)
    profile = paths.profile_ref(profile)  # a file: its absolute path (the kernel runs elsewhere)
    source = Path(source) if source else paths.notebook_source(name)
    output = Path(output).resolve()
    nb = jupytext.read(source)
    params = notebook_parameters(nb, name, profile=profile, parameters=parameters, source=source)

    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    failed = output.with_name(output.stem + ".failed.ipynb")
    env_backup = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"

    def execute(tmp_out):
        with tempfile.TemporaryDirectory(prefix="alps-nb-") as tmp:
            src_nb = Path(tmp) / f"{name}.ipynb"
            jupytext.write(nb, src_nb)
            kernel_log = Path(tmp) / "kernel-stderr.log"
            with open(kernel_log, "w+") as kernel_err:
                try:
                    pm.execute_notebook(str(src_nb), tmp_out, parameters=params, kernel_name="python3",
                                        cwd=str(cwd or paths.REPO_ROOT), log_output=log_output,
                                        progress_bar={"desc": name, "leave": True} if progress else False,
                                        stderr_file=ConsoleLines(sys.stderr) if progress else None,
                                        kernel_manager_class=_kernel_manager_class(str(Path(tmp) / "kernel"),
                                                                                   kernel_err))
                except KeyboardInterrupt:
                    # Ctrl-C: the cell's task, cut short, would be reported at exit (asyncio) and the
                    # kernel's own log holds the traceback of its interruption; neither is shown
                    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
                    raise
                except Exception as exc:
                    _show(kernel_err)
                    if Path(tmp_out).exists():
                        shutil.copyfile(tmp_out, failed)
                    if getattr(exc, "ename", None) == "KeyboardInterrupt":  # Ctrl-C reached the kernel first
                        raise KeyboardInterrupt from None
                    raise
                _show(kernel_err)

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


def notebook_parameters(nb, name: str, *, profile: str = "default", parameters=None, source=None) -> dict:
    """The parameters a run of notebook ``nb`` (named ``name``) gets: the profile's
    (:func:`alps.config.notebook_parameters`) overlaid by ``parameters``, and ``profile`` itself.
    Raises :class:`ValueError` for a name (from the profile or given) that the notebook's
    parameters cell does not declare, and for given paths that leave others to the defaults
    (:func:`check_paths_complete`) — before anything runs."""
    declared = declared_parameters(nb)
    configured = config.notebook_parameters(profile, name)
    for section in ("pipeline", "design"):  # 01/02 run the pipeline, 03-07 read the design
        if section not in declared:
            configured.pop(section, None)
    for what, given in ((f"{paths.config_file(profile)} [notebooks.{name}]", configured),
                        ("-p", parameters or {})):
        unknown = sorted(set(given) - declared)
        if unknown:
            raise ValueError(f"{source or name}: no parameter(s) {unknown} (from {what}) in its parameters cell "
                             f"(declared: {sorted(declared)})")
    check_paths_complete(declared, parameters or {}, source or name)
    params = {**configured, **(parameters or {})}
    if "profile" in declared:
        params["profile"] = profile
    return params


def _show(kernel_err) -> None:
    """Copy what the kernel wrote on its own standard error (rarely anything) to the console."""
    kernel_err.seek(0)
    text = kernel_err.read()
    if text.strip():
        sys.stderr.write(text if text.endswith("\n") else text + "\n")


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
    parser.add_argument("--profile", default="default",
                        help="config profile: a name in config/ (config/<name>.yaml) or the path of a YAML file")
    parser.add_argument("-p", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[],
                        help="parameter override; VALUE parsed as YAML")
    parser.add_argument("--log-output", action="store_true", help="stream cell output")
    args = parser.parse_args(argv)
    params = {k: yaml.safe_load(v) for k, v in args.p}
    try:
        run_notebook(args.name, args.output, profile=args.profile, parameters=params,
                     log_output=args.log_output)
    except KeyboardInterrupt:  # Ctrl-C during make: one line, not the traceback
        print(f"\nalps.build.nbrun: notebook {args.name} interrupted; run the same command (make) again to resume "
              "(finished scans and notebooks are reused)", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:  # papermill's error already carries the failing cell
        print(f"alps.build.nbrun: notebook {args.name} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
