"""Progress bars: tqdm's automatic bar without its warning about a missing ipywidgets.

In JupyterLab with ``ipywidgets`` installed the bar is a widget; otherwise (headless papermill
runs, a terminal, JupyterLab without ``ipywidgets``) it is text on stderr, which
``alps.build.nbrun`` forwards to the console during ``make paper``. Without this wrapper every
notebook step of ``make paper`` printed tqdm's "IProgress not found" warning.
"""
from __future__ import annotations

import warnings


def progress_bar(*args, **kwargs):
    """``tqdm.auto.tqdm(*args, **kwargs)``, its ``IProgress not found`` warning silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        from tqdm.auto import tqdm

        return tqdm(*args, **kwargs)
