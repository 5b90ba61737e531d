"""GenProp's networks: backbone adapters, Selective Content Encoder, Mask Prediction Decoder, GenPropModel."""

from genprop.errors import CheckpointError
from genprop.models.content_encoder import SelectiveContentEncoder
from genprop.models.genprop_config import GenPropConfig
from genprop.models.genprop_model import GenPropModel, GenPropOutput
from genprop.models.loading import build_genprop, load_genprop
from genprop.models.mask_decoder import MaskPredictionDecoder
from genprop.models.task_embedding import TaskEmbedding
from genprop.models.zero_init import zero_module

__all__ = ["CheckpointError", "GenPropConfig", "GenPropModel", "GenPropOutput", "MaskPredictionDecoder",
           "SelectiveContentEncoder", "TaskEmbedding", "build_genprop", "load_genprop", "zero_module"]
