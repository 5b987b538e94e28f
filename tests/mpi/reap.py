"""After an ``mpiexec`` run ends, end any of its ranks still alive.

MPI_Abort normally takes every rank with it; once, under load, a rank of an aborted job
outlived ``mpiexec`` (in a session of its own) and spun in a collective. The tests must not
leave such a process behind to slow the rest of the suite, so every job is started with a
marker in its environment (:func:`job_env`) and reaped by it afterwards (:func:`reap`).
"""

from __future__ import annotations

import contextlib
import uuid

MARK = "RNNLAB_TEST_JOB"


def job_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with a fresh job marker."""
    return {**env, MARK: uuid.uuid4().hex}


def reap(env: dict[str, str]) -> list[int]:
    """Kill the processes that carry ``env``'s job marker; returns their pids."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is in the test extra
        return []
    mark, killed = env.get(MARK), []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if mark is not None and proc.environ().get(MARK) == mark:
                proc.kill()
                killed.append(proc.info["pid"])
    return killed
