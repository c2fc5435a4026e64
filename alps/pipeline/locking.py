"""Advisory locks (``flock``) on an output folder and on each scan's derivatives.

* ``OUT_DIR/.alps-run.lock`` — the cohort tables; a whole-cohort ``alps run`` holds it for its
  duration, participant-level runs and ``alps group`` only while they write the tables;
* ``OUT_DIR/sub-X[/ses-Y]/.alps-run.lock`` — one scan's derivatives and run record.

Locks are released by the kernel when the process dies, even on SIGKILL. On a file system
without ``flock`` (e.g. Lustre mounted without ``-o flock``) a warning is given and the run goes
on unguarded; where ``fcntl`` is missing (Windows) locking is a no-op.
"""
from __future__ import annotations

import contextlib
import errno
import time
import warnings
from pathlib import Path

from ..io.errors import InputError
from .layout import LOCK_NAME, scan_layout

#: how long a participant-level run or ``alps group`` waits for OUT_DIR's lock to write the tables.
TABLES_LOCK_WAIT_S = 600.0


def _fcntl():
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    return fcntl


def _flock(fh, *, blocking: bool) -> bool:
    """``flock(LOCK_EX)``: True once held; raises ``BlockingIOError`` if held elsewhere
    (non-blocking). On a file system without ``flock`` support warns and returns False (unlocked)."""
    fcntl = _fcntl()
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError as exc:
        if isinstance(exc, BlockingIOError) or exc.errno in (errno.EAGAIN, errno.EACCES):
            raise BlockingIOError(*exc.args) from exc
        if exc.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            warnings.warn(f"{fh.name}: file locking not supported here ({exc.strerror}); "
                          "concurrent runs on this OUT_DIR are not guarded", RuntimeWarning, stacklevel=3)
            return False
        raise
    return True


@contextlib.contextmanager
def cohort_lock(out_dir, wait: float = 0.0):
    """Exclusive lock on ``OUT_DIR/.alps-run.lock``; ``wait`` seconds (default 0: fail at once)
    are spent retrying before :class:`alps.io.InputError` is raised. Yields True when the lock
    is held, False where locking is not supported (nothing may then be cleaned up as stale)."""
    if _fcntl() is None:  # pragma: no cover - Windows
        yield False
        return
    path = Path(out_dir) / LOCK_NAME
    fh = open(path, "a+")
    try:
        deadline = time.monotonic() + max(0.0, float(wait))
        while True:
            try:
                held = _flock(fh, blocking=False)
                break
            except BlockingIOError as exc:
                if time.monotonic() >= deadline:
                    raise InputError(
                        f"{out_dir}: another 'alps run' is writing to this directory (lock {path.name} held"
                        + (f" for more than {wait:.0f} s" if wait else "")
                        + "); wait for it or use another OUT_DIR") from exc
                time.sleep(min(0.5, max(0.01, deadline - time.monotonic())))
        yield held
    finally:
        fh.close()


@contextlib.contextmanager
def scan_lock(out_dir, item):
    """Exclusive lock on one scan's output directory, waiting for it if held.

    Two runs that reach the same scan (two jobs of an array given the same label, a participant-level
    job beside a whole-cohort run) take turns: the second one finds the first one's record and reuses
    it. Yields True when the lock is held, False where locking is not supported (the scan's
    stale temporaries are then left alone: another run could be writing them).
    """
    if _fcntl() is None:  # pragma: no cover - Windows
        yield False
        return
    path = scan_layout(out_dir, item).lock
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        yield _flock(fh, blocking=True)
    finally:
        fh.close()


def scan_locked(out_dir, item) -> bool:
    """True when a running process holds the scan's lock (never creates the lock file)."""
    fcntl = _fcntl()
    if fcntl is None:  # pragma: no cover - Windows
        return False
    try:
        fh = open(scan_layout(out_dir, item).lock)
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError as exc:  # EACCES: held (some systems); anything else: locking unsupported
            return exc.errno == errno.EACCES
        return False
