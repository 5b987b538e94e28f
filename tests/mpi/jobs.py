"""Running a job under ``mpiexec`` in the MPI tests, and ending any of its ranks still
alive afterwards.

MPI_Abort normally takes every rank with it; once, under load, a rank of an aborted job
outlived ``mpiexec`` (in a session of its own) and spun in a collective. The tests must not
leave such a process behind to slow the rest of the suite, so every job is started with a
marker in its environment (:func:`job_env`) and reaped by it afterwards (:func:`reap`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

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


#: the ``mpiexec`` of the ``mpich`` wheel beside this Python, else one on the PATH
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) \
    or shutil.which("mpiexec")


def _env() -> dict[str, str]:
    return job_env({**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})


@contextlib.contextmanager
def started_job(cmd: list[str], k: int, cwd: Path) -> Iterator[subprocess.Popen]:
    """``cmd`` under ``mpiexec -n k`` started in the background (a ``Popen`` with text
    pipes), for a test that signals it while it runs; on leaving, the job is killed if it
    still runs, and no process of it outlives the block."""
    env = _env()
    if k > 1:
        cmd = [MPIEXEC, "-n", str(k), *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=cwd)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        reap(env)


def run_job(cmd: list[str], k: int, cwd: Path, *, timeout: float = 60,
            check: bool = True) -> subprocess.CompletedProcess:
    """``cmd`` under ``mpiexec -n k`` (alone for ``k == 1``) in ``cwd``, one BLAS thread per
    process; no process of it outlives the call."""
    env = _env()
    if k > 1:
        cmd = [MPIEXEC, "-n", str(k), *cmd]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=cwd)
    finally:
        reap(env)  # no rank of the job may outlive it
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc
