"""Propagation: carry a first-frame edit through a video (streamed windows, native-resolution composite, tracking)."""

from genprop.propagation.config import PropagationConfig
from genprop.propagation.outputs import PropagationResult
from genprop.propagation.propagate import ModelLimitError, Propagator, load_model

__all__ = ["ModelLimitError", "PropagationConfig", "PropagationResult", "Propagator", "load_model"]
