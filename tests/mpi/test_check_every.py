"""``rnnlab train --check-every N`` (issue 23): how often the processes of a run under
``mpiexec`` compare a checksum of their parameters. The option is ``TrainConfig.check_every``
(None: the world's own setting, 50 steps), saved with the run and free to change on
``--resume`` (it does not change what is computed)."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
from tests.mpi.jobs import MPIEXEC, run_job

TEXT = "the quick brown fox jumps over the lazy dog\n" * 40
OPTIONS = ("--level", "char", "--batch-size", "4", "--bptt", "8", "--hidden-size", "8",
           "--embedding-dim", "4", "--no-progress", "--sample-length", "0")


def saved_check_every(folder):
    from rnnlab.train.checkpoint import read_checkpoint

    _, meta = read_checkpoint(folder / "last.safetensors")
    return meta["train_config"]["check_every"], meta["progress"]["step"]


@pytest.mark.parametrize("value, message", [
    ("0", "argument --check-every: expected an integer >= 1, got 0"),
    ("-3", "argument --check-every: expected an integer >= 1, got -3"),
    ("2.5", "argument --check-every: expected an integer, got '2.5'"),
])
def test_check_every_must_be_a_positive_integer(value, message, capsys):
    from rnnlab.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--check-every", value])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("value, error", [(0, ValueError), (1.5, TypeError), (True, TypeError)])
def test_train_config_checks_check_every(value, error):
    from rnnlab.train import TrainConfig

    with pytest.raises(error, match="check_every"):
        TrainConfig(check_every=value)


def test_check_every_is_saved_and_may_change_on_resume(tmp_path, capsys):
    from rnnlab.cli import main

    text = tmp_path / "t.txt"
    text.write_text(TEXT, encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "--corpus", str(text), "--out", str(run), "--max-steps", "1",
                 "--check-every", "3", *OPTIONS]) == 0
    assert saved_check_every(run) == (3, 1)
    assert main(["train", "--resume", str(run), "--max-steps", "2", "--check-every", "7",
                 "--no-progress", "--sample-length", "0"]) == 0
    assert saved_check_every(run) == (7, 2)
    capsys.readouterr()


def test_the_trainer_takes_check_every_from_its_config(tmp_path):
    from rnnlab.models import SequenceRegressor
    from rnnlab.train import Examples, TrainConfig, Trainer
    from rnnlab.train.distributed import World

    data = {"train": Examples([[[0.0]]], [[0.0]]), "valid": Examples([[[0.0]]], [[0.0]])}
    model = SequenceRegressor(1, 2, rng=0)
    given = World(check_every=9)
    trainer = Trainer(model, data, TrainConfig(progress=False), tmp_path / "a", distributed=given)
    assert trainer.world.check_every == 9  # None: the world's own
    trainer = Trainer(model, data, TrainConfig(progress=False, check_every=4), tmp_path / "b",
                      distributed=given)
    assert trainer.world.check_every == 4


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
                    reason="mpi4py or mpiexec is not installed (pip install 'rnnlab[mpi]')")
def test_two_processes_compare_parameters_every_n_steps(tmp_path):
    """Under mpiexec the first line says the interval, and the run compares that often
    (every step here: a run with drifting ranks would stop with a DriftError)."""
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    proc = run_job([sys.executable, "-m", "rnnlab", "train", "--corpus", "t.txt", "--out",
                    "run", "--max-steps", "3", "--check-every", "1", *OPTIONS], 2, tmp_path)
    assert "training on 2 processes" in proc.stderr + proc.stdout
    assert "parameters compared every 1 step" in proc.stderr + proc.stdout
    assert json.loads(proc.stdout[proc.stdout.index("{"):])["steps"] == 3
    assert saved_check_every(tmp_path / "run") == (1, 3)
