"""Signals (issue 26, item 3): SIGTERM and SIGHUP save and stop like Ctrl-C, each with
its own exit status (130 SIGINT, 143 SIGTERM, 129 SIGHUP); a second signal aborts at
once, quietly; a signal the parent set to be ignored (``nohup``) stays ignored; and
Ctrl-C pressed twice during start-up prints one line, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from rnnlab.cli import main
from rnnlab.train import Trainer
from rnnlab.train.checkpoint import read_checkpoint
from rnnlab.train.metrics import read_metrics
from tests.reliability.conftest import small_config, small_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def safety_net():
    """Handlers of our own for SIGTERM and SIGHUP while a test runs (so that a trainer
    that does not handle them cannot end pytest), put back afterwards."""
    seen: list[int] = []

    def record(signum: int, frame: Any) -> None:
        seen.append(signum)

    saved = {s: signal.signal(s, record) for s in (signal.SIGTERM, signal.SIGHUP)}
    saved[signal.SIGINT] = signal.getsignal(signal.SIGINT)
    yield seen, record
    for s, handler in saved.items():
        signal.signal(s, handler)


def _signal_at(trainer: Trainer, step: int, signum: int, times: int = 1) -> list[Any]:
    """Send ``signum`` to this process (``times`` times) right after optimizer step
    ``step``; returns the handlers seen in force during training."""
    real = trainer._train_step
    seen: list[Any] = []

    def step_then_signal(x: Any, y: Any) -> Any:
        loss = real(x, y)
        seen.append(signal.getsignal(signum))
        if trainer.progress.step == step:
            for _ in range(times):
                os.kill(os.getpid(), signum)
        return loss

    trainer._train_step = step_then_signal  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("signum,reason", [(signal.SIGTERM, "terminated"),
                                           (signal.SIGHUP, "hangup"),
                                           (signal.SIGINT, "interrupted")])
def test_sigterm_and_sighup_save_like_ctrl_c(corpus, tmp_path, safety_net, signum, reason):
    seen, record = safety_net
    trainer = Trainer(small_model(corpus), corpus, small_config(epochs=5), tmp_path / "run")
    _signal_at(trainer, 3, signum)
    summary = trainer.fit()
    assert summary["stopped"] == reason and summary["steps"] == 3
    assert seen == []  # the trainer's handler took it, not the safety net
    _, meta = read_checkpoint(tmp_path / "run" / "last.safetensors")
    assert meta["progress"]["step"] == 3
    stop = read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]
    assert stop["event"] == "stop" and stop["reason"] == reason
    if signum != signal.SIGINT:
        assert signal.getsignal(signum) is record  # put back after fit


def test_a_second_signal_aborts_at_once_with_its_status(corpus, tmp_path, safety_net,
                                                        capsys, monkeypatch):
    from rnnlab.train import loop as trainer_module

    real_fit = trainer_module.Trainer.fit

    def fit(self: Trainer) -> Any:
        _signal_at(self, 2, signal.SIGTERM, times=2)
        return real_fit(self)

    monkeypatch.setattr(trainer_module.Trainer, "fit", fit)
    text = tmp_path / "c.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\n" * 40)
    code = main(["train", "--corpus", str(text), "--out", str(tmp_path / "run"),
                 "--no-progress", "--sample-length", "0", "--hidden-size", "8",
                 "--batch-size", "4", "--bptt", "8", "--epochs", "5"])
    assert code == 143
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "rnnlab: terminated"


def test_an_ignored_sighup_stays_ignored(corpus, tmp_path, safety_net):
    """Under ``nohup`` SIGHUP is ignored: the run must survive the terminal closing."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    trainer = Trainer(small_model(corpus), corpus, small_config(epochs=1, max_steps=6),
                      tmp_path / "run")
    handlers = _signal_at(trainer, 2, signal.SIGHUP)
    summary = trainer.fit()
    assert summary["stopped"] == "max_steps" and summary["steps"] == 6
    assert set(handlers) == {signal.SIG_IGN}


def _spawn(args: list[str], cwd: Path, **kw: Any) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(condition: Any, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {what}: {proc.communicate()[1][-2000:]}")
        time.sleep(0.02)


def test_sigterm_through_the_command_line(tmp_path):
    """``kill``/``timeout``/``docker stop``: the real process saves, says so and exits
    with 143; the run resumes from what it saved."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 100)
    run = tmp_path / "run"
    proc = _spawn(["-m", "rnnlab", "train", "--corpus", str(corpus), "--out", str(run),
                   "--no-progress", "--sample-length", "0", "--hidden-size", "8",
                   "--batch-size", "4", "--bptt", "8", "--epochs", "1000",
                   "--log-every", "1"], tmp_path)
    metrics = run / "metrics.jsonl"
    _wait_for(lambda: metrics.exists() and metrics.stat().st_size > 0, proc, "training")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "SIGTERM" in err
    step = read_checkpoint(run / "last.safetensors")[1]["progress"]["step"]
    assert step >= 1 and read_metrics(metrics)[-1]["reason"] == "terminated"
    assert main(["train", "--resume", str(run / "last.safetensors"), "--max-steps",
                 str(step + 1), "--no-progress", "--sample-length", "0"]) == 0


def test_ctrl_c_twice_during_start_up_prints_no_traceback(tmp_path):
    """Two SIGINTs while the command is still loading: one line, status 130."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 20_000)
    ready = tmp_path / "ready"
    child = textwrap.dedent(f"""
        import sys
        import rnnlab.cli
        open({str(ready)!r}, "w").close()
        sys.exit(rnnlab.cli.main(sys.argv[1:]))
    """)
    proc = _spawn(["-c", child, "train", "--corpus", str(corpus), "--out",
                   str(tmp_path / "run"), "--no-progress"], tmp_path)
    _wait_for(ready.exists, proc, "start")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    last = err.strip().splitlines()[-1]
    # both landed before training started, or the first during the first steps (a save)
    assert last == "rnnlab: interrupted" or last.startswith("interrupted: state saved"), err


def test_ctrl_c_inside_the_numpy_import_is_quiet(tmp_path):
    """A KeyboardInterrupt inside numpy's import comes out as an ImportError with two
    tracebacks, unless Ctrl-C is held back until the import is done. The Ctrl-C is sent
    by an alarm 5 ms after main starts, while numpy is being imported."""
    child = textwrap.dedent("""
        import os, signal, sys
        from rnnlab.cli import main
        signal.signal(signal.SIGALRM, lambda *a: os.kill(os.getpid(), signal.SIGINT))
        signal.setitimer(signal.ITIMER_REAL, 0.005)
        sys.exit(main(sys.argv[1:]))
    """)
    proc = _spawn(["-c", child, "train", "--corpus", str(tmp_path / "nope"), "--no-progress"],
                  tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "rnnlab: interrupted\n", err


def test_a_second_ctrl_c_while_exiting_is_ignored(tmp_path):
    """The first Ctrl-C lands during start-up, the second while the process is on its
    way out (here: right after main returns): still no traceback."""
    ready = tmp_path / "ready"
    child = textwrap.dedent("""
        import os, signal, sys, time
        import rnnlab.families.lm as run

        def load_data(cfg):
            os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C, while loading
            time.sleep(5)

        run.load_data = load_data
        from rnnlab.cli import main
        code = main(sys.argv[1:])
        os.kill(os.getpid(), signal.SIGINT)  # the second, on the way out
        time.sleep(0.2)
        sys.exit(code)
    """)
    proc = _spawn(["-c", child, "train", "--corpus", str(ready), "--no-progress"], tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "rnnlab: interrupted\n", err
