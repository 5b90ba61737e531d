"""GenProp's networks: backbone adapters, Selective Content Encoder, Mask Prediction Decoder, GenPropModel."""

from genprop.models.content_encoder import SelectiveContentEncoder
from genprop.models.genprop_model import CheckpointError, GenPropConfig, GenPropModel, GenPropOutput
from genprop.models.mask_decoder import MaskPredictionDecoder
from genprop.models.task_embedding import TaskEmbedding
from genprop.models.zero_init import zero_module

__all__ = ["CheckpointError", "GenPropConfig", "GenPropModel", "GenPropOutput", "MaskPredictionDecoder",
           "SelectiveContentEncoder", "TaskEmbedding", "zero_module"]
