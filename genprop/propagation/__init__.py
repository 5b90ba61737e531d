"""Propagation: carry a first-frame edit through a video (streamed windows, native-resolution composite, tracking)."""

from genprop.propagation.config import TASK_IDS, PropagationConfig, task_id
from genprop.propagation.outputs import PropagationResult
from genprop.propagation.propagate import ModelLimitError, Propagator, load_model

__all__ = ["TASK_IDS", "ModelLimitError", "PropagationConfig", "PropagationResult", "Propagator", "load_model",
           "task_id"]
