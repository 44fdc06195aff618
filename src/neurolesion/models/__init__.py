"""Networks, their configuration, and trained models with their cards.

Example:
    >>> from neurolesion.models import ModelConfig, build_network, shipped_models
    >>> build_network(ModelConfig()).__class__.__name__
    'UNet'
"""

from neurolesion.models.card import LoadedModel, ModelCard, load_model, save_model, shipped_models
from neurolesion.models.config import ModelConfig
from neurolesion.models.networks import build_network

__all__ = [
    "LoadedModel",
    "ModelCard",
    "ModelConfig",
    "build_network",
    "load_model",
    "save_model",
    "shipped_models",
]
