"""Models: compositions of :mod:`rnnlab.nn` layers with an explicit backward."""

from rnnlab.models.rnnlm import RNNLM, RNNLMConfig

__all__ = ["RNNLM", "RNNLMConfig"]
