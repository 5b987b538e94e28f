"""The trainer refuses to start when the processes of a run do not hold the same training
data (each reads its own files, on its own machine): every rank raises the same
ValueError at once (the check is one allgather), so no rank is left waiting."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install 'rnnlab[mpi]')")

from rnnlab.models import SequenceRegressor
from rnnlab.train import Examples, TrainConfig, Trainer
from rnnlab.train.distributed import MPIWorld


class OtherRankHolds:
    """Rank 0 of 2, whose peer's data digest is ``theirs`` (None: the same as this rank's);
    its options (a dict, compared first) are this rank's."""

    def __init__(self, theirs):
        self.theirs = theirs

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 2

    def allgather(self, value):
        same = self.theirs is None or isinstance(value, dict)
        return [value, value if same else self.theirs]


def _trainer(tmp_path, comm):
    rng = np.random.default_rng(0)
    data = {"train": Examples(rng.standard_normal((8, 4, 3)), rng.standard_normal((8, 1))),
            "valid": Examples(rng.standard_normal((4, 4, 3)), rng.standard_normal((4, 1)))}
    model = SequenceRegressor(3, 5, output_size=1, rng=0, dtype="float64")
    return Trainer(model, data, TrainConfig(epochs=1, batch_size=4, progress=False),
                   tmp_path / "run", distributed=MPIWorld(comm), echo=lambda m: None)


def test_processes_with_other_data_are_refused(tmp_path):
    assert _trainer(tmp_path, OtherRankHolds(None)).world.size == 2
    with pytest.raises(ValueError, match="do not hold the same training data"):
        _trainer(tmp_path, OtherRankHolds("sha256:another"))
