"""Training: configuration, data and patch sampling, augmentation, losses, K-fold split and the loop.

Example:
    >>> from neurolesion.train import load_config, train
"""

from neurolesion.train.config import TrainConfig, load_config
from neurolesion.train.loop import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "load_config", "train"]
