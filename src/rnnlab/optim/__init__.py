"""Optimizers, gradient clipping and learning-rate schedules for :mod:`rnnlab.nn` models.

Optimizers take a :class:`rnnlab.nn.Module` (or ``(name, param, grad)`` triples), keep
references to the parameter and gradient arrays, and update the parameters in place on
numpy or CuPy alike. A training step::

    loss = model.forward(...); model.backward(...)
    clip_grad_norm(model, 0.25)
    opt.step(); opt.zero_grad()
    sched.step()             # CosineAnnealing: per batch

and at the end of an epoch ``StepLR``/``ExponentialDecay.step()`` or
``ReduceOnPlateau.step(val_metric)``.
"""

from rnnlab.optim._checks import ParamSource, ParamTriple
from rnnlab.optim.adagrad import AdaGrad
from rnnlab.optim.adam import Adam, AdamW
from rnnlab.optim.clip import clip_grad_norm, clip_grad_value, grad_norm
from rnnlab.optim.optimizer import Optimizer
from rnnlab.optim.plateau import ReduceOnPlateau
from rnnlab.optim.rmsprop import RMSprop
from rnnlab.optim.schedules import CosineAnnealing, ExponentialDecay, Schedule, StepLR
from rnnlab.optim.sgd import SGD, Momentum, Nesterov

__all__ = [
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "CosineAnnealing",
    "ExponentialDecay",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "ParamSource",
    "ParamTriple",
    "RMSprop",
    "ReduceOnPlateau",
    "Schedule",
    "StepLR",
    "clip_grad_norm",
    "clip_grad_value",
    "grad_norm",
]
