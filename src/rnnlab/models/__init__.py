"""Models: compositions of :mod:`rnnlab.nn` layers with an explicit backward."""

from rnnlab.models.classifier import SequenceClassifier
from rnnlab.models.regressor import SequenceRegressor
from rnnlab.models.rnnlm import RNNLM, RNNLMConfig

__all__ = ["RNNLM", "RNNLMConfig", "SequenceClassifier", "SequenceRegressor"]
