"""Scale-out on a Dask cluster (participant/group levels for arrays: :mod:`alps.pipeline.group`).

Dask
    ``alps run INPUT OUT_DIR --scheduler tcp://host:8786`` (or ``run_cohort(..., scheduler=ADDRESS or
    Client)``) submits one task per scan (:func:`alps.pipeline.process_subject`) to a
    ``dask.distributed`` cluster; rows come back as they finish (tqdm progress), a scan whose worker
    dies is recorded as failed while the others finish, and the tables are written by the submitting
    process exactly as in a local run (same ``alps.tsv``). Workers must see INPUT and OUT_DIR at the
    same paths (a shared file system). Needs the ``scale`` extra (``pip install 'alps[scale]'``).
"""
from __future__ import annotations

import uuid

from .subject import process_subject

__all__ = ["get_client", "map_subjects"]


# ----------------------------------------------------------------------------- Dask
def get_client(scheduler):
    """``(client, owned)`` for a scheduler address, a ``distributed.Client`` or a cluster object
    (``LocalCluster``, ``SLURMCluster``...); ``owned`` is True when the client was created here."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("running on a Dask scheduler needs dask.distributed: "
                          "pip install 'alps[scale]'  (or 'dask[distributed]')") from exc
    if isinstance(scheduler, Client):
        return scheduler, False
    return Client(scheduler), True


def map_subjects(items, out_dir, scheduler, **kwargs):
    """Run :func:`alps.pipeline.process_subject` for every item on a Dask cluster.

    Yields one row per item, in completion order. ``kwargs`` are passed to ``process_subject``
    (``stages``, ``force``, ``qc_png`` and stage parameters). ``process_subject`` never raises; a
    task that fails anyway (its worker was killed, e.g. out of memory) becomes a failed row.
    """
    from distributed import as_completed

    client, owned = get_client(scheduler)
    try:
        token = uuid.uuid4().hex[:8]
        futures = {}
        for it in items:
            fut = client.submit(process_subject, it, str(out_dir), key=f"alps-{it.key}-{token}", pure=False,
                                **kwargs)
            futures[fut] = it
        for fut in as_completed(list(futures)):
            it = futures.pop(fut)
            try:
                row = fut.result()
            except Exception as exc:  # the task itself failed (worker lost...), not the pipeline
                row = {"participant_id": it.participant_id, "session_id": it.session_id, "status": "failed",
                       "error": f"dask: {type(exc).__name__}: {it.dwi}: {exc}"}
            fut.release()
            yield row
    finally:
        for fut in futures:  # interrupted: do not leave work queued on the cluster
            fut.cancel()
        if owned:
            client.close()
