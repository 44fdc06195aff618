"""Evaluation: voxel overlap, surface distances, lesion-wise detection, PR/FROC curves and agreement.

Pure functions on arrays with voxel spacing in mm. The main ones:

Example:
    >>> import numpy as np
    >>> t = np.zeros((20, 20, 20), bool); t[5:9, 5:9, 5:9] = True
    >>> dice(t, t), surface_metrics(t, t, (1.0, 1.0, 3.0))["hd95_mm"], match_lesions(t, t).f1
    (1.0, 0.0, 1.0)
"""

from neurolesion.metrics.agreement import (
    anova_oneway,
    bland_altman,
    bootstrap_ci,
    cohen_kappa,
    icc,
    paired_t_test,
    pearson,
    sign_test,
    spearman,
)
from neurolesion.metrics.curves import LesionCurves, lesion_curves
from neurolesion.metrics.lesionwise import HIT_RULES, LesionMatch, label_lesions, match_lesions
from neurolesion.metrics.overlap import dice, iou, overlap_metrics, per_label, precision, recall, specificity
from neurolesion.metrics.surface import assd, hausdorff, hd95, surface_dice, surface_metrics

__all__ = [
    "HIT_RULES",
    "LesionCurves",
    "LesionMatch",
    "anova_oneway",
    "assd",
    "bland_altman",
    "bootstrap_ci",
    "cohen_kappa",
    "dice",
    "hausdorff",
    "hd95",
    "icc",
    "iou",
    "label_lesions",
    "lesion_curves",
    "match_lesions",
    "overlap_metrics",
    "paired_t_test",
    "pearson",
    "per_label",
    "precision",
    "recall",
    "sign_test",
    "spearman",
    "specificity",
    "surface_dice",
    "surface_metrics",
]
