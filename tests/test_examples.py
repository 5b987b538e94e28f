"""Every script in ``examples/`` runs in ``--quick`` mode and reports success.

Each example is run as a learner would run it: a separate Python process
(``sys.executable``), from a scratch folder, importing the installed ``rnnlab``. It must
exit with status 0 and print its ``SUCCESS:`` line.

The subprocesses get one BLAS thread each (``OPENBLAS_NUM_THREADS=1`` and friends): the
examples multiply small matrices, where extra BLAS threads only compete for the cores
(on a busy 2-core machine they made the products 40 times slower).

``seed002_simple_rnnlm.py`` needs Penn Treebank; it is looked for in ``$RNNLAB_DATA`` and
in ``shared/data`` next to a parent folder of this file, and the test skips when there
is none (it never downloads).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPTS = [
    "seed000_toy_sequence.py",
    "seed001_functional.py",
    "seed002_simple_rnnlm.py",
    "seed003_char_rnn.py",
    "time_series.py",
]
PTB_FILES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
TIMEOUT_S = 180


def find_ptb() -> Path | None:
    """A folder holding ``ptb/ptb.*.txt`` (or ``ptb.*.txt``), or None."""
    bases = [Path(p).expanduser() for p in os.environ.get("RNNLAB_DATA", "").split(os.pathsep)
             if p]
    bases += [parent / "shared" / "data" for parent in Path(__file__).resolve().parents]
    for base in bases:
        for folder in (base, base / "ptb"):
            if all((folder / name).is_file() for name in PTB_FILES):
                return folder
    return None


def run_example(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    env["RNNLAB_CACHE"] = str(cwd / "cache")  # never the user's download cache
    env.pop("RNNLAB_DEVICE", None)  # the examples run on the CPU
    return subprocess.run([sys.executable, str(EXAMPLES / script), "--quick", *args],
                          cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)


def check_success(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{proc.stderr}"
    assert "SUCCESS:" in out, out
    # no tracebacks, no warnings (other stderr lines, e.g. matplotlib building its font
    # cache on first use, are fine)
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    return out


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_is_self_contained(script):
    source = (EXAMPLES / script).read_text(encoding="utf-8")
    assert "sys.path" not in source  # imports the installed rnnlab
    assert "np.random.seed" not in source and "--seed" in source and "--quick" in source


@pytest.mark.parametrize("script", ["seed000_toy_sequence.py", "seed001_functional.py",
                                    "seed003_char_rnn.py"])
def test_example_quick(script, tmp_path):
    check_success(run_example(script, cwd=tmp_path))


def test_seed002_simple_rnnlm_quick(tmp_path):
    ptb = find_ptb()
    if ptb is None:
        pytest.skip("Penn Treebank not found: set RNNLAB_DATA to a folder holding "
                    "ptb/ptb.train.txt (the example would download it)")
    out = check_success(run_example("seed002_simple_rnnlm.py", "--data-dir", str(ptb),
                                    cwd=tmp_path))
    assert "first 1000 PTB words (vocabulary 418)" in out


def test_time_series_quick_with_plot(tmp_path):
    plot = tmp_path / "forecast.png"
    out = check_success(run_example("time_series.py", "--plot", str(plot), cwd=tmp_path))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "plot skipped: matplotlib is not installed" in out
        assert not plot.exists()
    else:
        assert plot.is_file() and plot.stat().st_size > 0
