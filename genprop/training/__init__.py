"""The training library: objectives, optimiser schedule, EMA and the step — plain PyTorch, no Ray.

``pipelines/train.py`` runs it under Ray Train; the same ``Trainer`` runs without Ray (a GPU box,
a notebook).
"""

from genprop.training.config import TrainConfig
from genprop.training.ema import EMA
from genprop.training.objectives import GenPropObjective, I2VObjective, NonFiniteLossError, drop_condition
from genprop.training.optim import lr_factor, make_optimizer
from genprop.training.trainer import Trainer

__all__ = ["EMA", "GenPropObjective", "I2VObjective", "NonFiniteLossError", "TrainConfig", "Trainer",
           "drop_condition", "lr_factor", "make_optimizer"]
