"""`Head`: one simulated head before any MR contrast, the object lesion generators modify."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurolesion.anatomy.labels import BRAIN_TISSUES


@dataclass
class Head:
    """A label map of a head on a 1 mm-ish working grid.

    Attributes:
        labels: (X, Y, Z) uint8 tissue codes: `anatomy.labels.Tissue` (0-31) and, once lesions are
            inserted, `synth.tissues.LesionTissue` (32 and up).
        regions: (X, Y, Z) uint8 `anatomy.labels.Region` codes (lobar / deep / infratentorial).
        lobes: (X, Y, Z) uint8 `anatomy.labels.Lobe` codes.
        sides: (X, Y, Z) uint8 `anatomy.labels.Side` codes.
        affine: 4x4 voxel-to-RAS+ mm matrix of the working grid.
        age_factor: 0 (young) .. 1 (old): drives atrophy, ventricle size and lesion load.
        asymmetry: the drawn left-right asymmetry (`deform.Asymmetry.as_dict`); empty when none was drawn.
    """

    labels: np.ndarray
    regions: np.ndarray
    lobes: np.ndarray
    sides: np.ndarray
    affine: np.ndarray
    age_factor: float = 0.5
    asymmetry: dict[str, float] = field(default_factory=dict)

    @property
    def spacing(self) -> tuple[float, float, float]:
        sx, sy, sz = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(sx), float(sy), float(sz))

    def brain_mask(self) -> np.ndarray:
        """Boolean brain mask: brain tissues plus any lesion code inside the brain (codes >= 32)."""
        return np.isin(self.labels, list(BRAIN_TISSUES)) | (self.labels >= 32)
