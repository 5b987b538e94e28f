"""Training: the Trainer, checkpoints, configs, metrics."""

from rnnlab.train.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from rnnlab.train.config import DataConfig, TrainConfig
from rnnlab.train.trainer import DivergenceError, Trainer

__all__ = ["CheckpointError", "DataConfig", "DivergenceError", "TrainConfig", "Trainer",
           "read_checkpoint", "write_checkpoint"]
