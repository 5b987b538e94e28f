"""Each model family's task and launcher, together: :mod:`~rnnlab.families.lm` (the
language model), :mod:`~rnnlab.families.forecast` (the regressor and the forecaster),
:mod:`~rnnlab.families.classifier` (the classifier); seq2seq keeps its own in
:mod:`rnnlab.seq2seq.training`.

Importing a family registers its task as the one ``Trainer(model, data, config,
out_dir)`` builds for its model (:data:`rnnlab.train.task.DEFAULT_TASKS`).
"""

from rnnlab.families import classifier, forecast, lm

__all__ = ["classifier", "forecast", "lm"]
