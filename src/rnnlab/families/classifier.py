"""The classifier (:class:`~rnnlab.models.SequenceClassifier`): its task.

:class:`ClassificationTask` trains a classifier on :class:`~rnnlab.train.examples.Examples`
whose targets are class ids (softmax cross-entropy) and scores its accuracy; the classifier
has no launcher of its own (a script builds the task and calls the trainer).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnnlab.data import DataError
from rnnlab.models.classifier import SequenceClassifier
from rnnlab.train.examples import Examples, ExampleTask, digest_of, examples_of
from rnnlab.train.task import DEFAULT_TASKS


class ClassificationTask(ExampleTask):
    """A :class:`~rnnlab.models.SequenceClassifier` on :class:`Examples` whose targets are
    class ids (softmax cross-entropy); also scores the accuracy."""

    kind = "classifier"

    def __init__(self, model: Any, data: Mapping[str, Any], config: Any) -> None:
        splits = {k: examples_of(data.get(k), "Trainer", k) for k in ("train", "valid", "test")}
        for name, split in splits.items():
            if split is None:
                continue
            t = split.targets
            if t.ndim != 1 or t.dtype.kind not in "iu" or t.min() < 0 \
                    or t.max() >= model.num_classes:
                raise DataError(f"Trainer: the {name} split expected class ids in [0, "
                                f"{model.num_classes}) of shape (N,), got {t.dtype}"
                                f"{t.shape} in [{t.min()}, {t.max()}]")
        super().__init__(model, splits, config, size=len, take=Examples.take)

    def digest(self) -> str:
        return digest_of(self.splits)

    def forward_loss(self, batch: tuple) -> float:
        xs, ys, lengths = batch
        xp = self.model.xp
        return self.model.forward_loss(xp.asarray(xs, dtype=self.model.dtype), ys,
                                       lengths=lengths)

    def reference_loss(self) -> float:
        return math.log(self.model.num_classes)

    def scores(self, split: str, config: Any) -> dict[str, float]:
        data = self.splits[split]
        lo, hi = (0, len(data)) if self.world is None else self.world.share(len(data))
        was_training = self.model.training
        self.model.eval()
        try:
            right = 0
            for start in range(lo, hi, config.batch_size):  # this rank's share
                xs, ys, lengths = data.take(np.arange(start, min(start + config.batch_size,
                                                                 hi)))
                pred = self.model.predict(xs.astype(self.model.dtype), lengths=lengths)
                right += int((np.asarray(pred) == ys).sum())
        finally:
            self.model.train(was_training)
        if self.world is not None:
            right = round(float(self.world.allreduce_sum([right])[0]))
        return {"accuracy": right / len(data)}

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "model_config": self.model.config_dict()}


DEFAULT_TASKS[SequenceClassifier] = ClassificationTask
