"""Inference: sliding-window prediction with optional mirror TTA, and post-processing into lesions.

Example:
    >>> from neurolesion.infer import postprocess, predict_volume
"""

from neurolesion.infer.postprocess import postprocess
from neurolesion.infer.predict import Predictor, predict_volume

__all__ = ["Predictor", "postprocess", "predict_volume"]
