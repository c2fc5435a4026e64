"""Ctrl-C — SIGINT to the whole foreground process group, as a terminal sends it — during
``alps run``, ``alps paper`` and the notebook runner of ``make paper``: one line saying that
rerunning resumes and exit status 130, not a traceback (issue 22); a rerun of ``alps run`` resumes.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from alps.cli import INTERRUPTED
from test_bad_inputs import write_good

pytestmark = pytest.mark.slow


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupted(cmd, marker, cwd):
    """Run ``cmd`` in a session of its own, send SIGINT to its process group once ``marker``
    exists; returns (exit status, everything it printed)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    # SIGINT back to its default in the child: a test run started in the background (`make test &`,
    # nohup, some CI runners) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt
    # handler; a terminal's foreground job has the default
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True, preexec_fn=_default_sigint)
    try:
        t0 = time.monotonic()
        while not marker.exists():
            assert proc.poll() is None, f"ended before the interrupt: {proc.communicate()[0]}"
            assert time.monotonic() - t0 < 300, "timed out waiting for the run to start"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        out = proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, out


def _one_line(out):
    said = [line for line in out.splitlines() if "interrupted; run the same command" in line]
    assert len(said) == 1, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    return said[0]


def test_ctrl_c_in_alps_run_says_rerun_resumes_and_it_does(tmp_path):
    bids, out = tmp_path / "bids", tmp_path / "out"
    for s in "abc":
        write_good(bids, s)
    cmd = [sys.executable, "-m", "alps.cli", "run", str(bids), str(out), "--n-jobs", "1"]
    rc, text = _interrupted(cmd, out / "sub-a" / "dwi" / "sub-a_desc-alps.json", tmp_path)
    assert rc == 130, text
    assert _one_line(text) == f"alps run: {INTERRUPTED}"
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    t = pd.read_csv(out / "timings.tsv", sep="\t").set_index("participant_id")
    assert bool(t.loc["sub-a", "preprocess_reused"]) and bool(t.loc["sub-a", "measure_reused"])


@pytest.mark.parametrize("runner", ["alps paper", "make's notebook runner"])
def test_ctrl_c_during_a_notebook(tmp_path, runner):
    """Interrupted while notebook 01 runs the pipeline in its kernel (both the kernel and the
    runner get the SIGINT)."""
    bids, out = tmp_path / "bids", tmp_path / "out"
    for s in "ab":
        write_good(bids, s)
    der = out / "derivatives" / "alps"
    if runner == "alps paper":
        (tmp_path / "participants.tsv").write_text("participant_id\tgroup\tage\tsex\nsub-a\tPD\t50\tF\n"
                                                   "sub-b\tHC\t60\tM\n")
        cmd = [sys.executable, "-m", "alps.cli", "paper", "--bids", "bids", "--out", "out", "--participants",
               "participants.tsv", "--profile", "design-two-groups"]
        expected = f"alps paper: {INTERRUPTED}"
    else:
        cmd = [sys.executable, "-m", "alps.build.nbrun", "01_preprocess", "out/01.ipynb", "--profile", "smoke",
               "-p", "data_dir", "bids", "-p", "derivatives_dir", str(der), "-p", "preprocess_tsv", "out/pre.tsv"]
        expected = ("alps.build.nbrun: notebook 01_preprocess interrupted; run the same command (make) again to "
                    "resume (finished scans and notebooks are reused)")
    rc, text = _interrupted(cmd, der / "dataset_description.json", tmp_path)
    assert rc == 130, text
    assert _one_line(text) == expected
