"""Training: the loop (:class:`Trainer`) and its collaborators, the task protocol,
checkpoints, configs, metrics.

``Trainer(task, config, out_dir).fit()`` trains a :class:`Task` the caller builds (each
model family's is in :mod:`rnnlab.families`, seq2seq's in :mod:`rnnlab.seq2seq.training`).
"""

from rnnlab.train.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from rnnlab.train.config import DataConfig, TrainConfig
from rnnlab.train.examples import ExampleBatches, Examples, ExampleTask
from rnnlab.train.guard import DivergenceError
from rnnlab.train.loop import Trainer
from rnnlab.train.runstate import Progress
from rnnlab.train.stops import Aborted
from rnnlab.train.task import Task, TaskBase

__all__ = ["Aborted", "CheckpointError", "DataConfig", "DivergenceError", "ExampleBatches",
           "ExampleTask", "Examples", "Progress", "Task", "TaskBase", "TrainConfig", "Trainer",
           "read_checkpoint", "write_checkpoint"]
