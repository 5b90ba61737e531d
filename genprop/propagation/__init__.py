"""Propagation: carry a first-frame edit through a video (windows, faithful output, tracking, memory)."""

from genprop.propagation.config import TASK_IDS, PropagationConfig, task_id
from genprop.propagation.propagate import PropagationResult, Propagator, load_model

__all__ = ["TASK_IDS", "PropagationConfig", "PropagationResult", "Propagator", "load_model", "task_id"]
