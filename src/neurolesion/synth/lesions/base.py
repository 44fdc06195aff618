"""The records every lesion generator returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LesionRecord:
    """One inserted lesion, as written to case.json.

    Attributes:
        id: instance id in the task's label map (1..N).
        type: lesion type (registry lesion_types: wmh, cmb, lacune, epvs, ccm, metastasis, ...).
        subtype: e.g. periventricular/deep (WMH), Zabramski I-IV (CCM), solid/ring (metastasis).
        centre_vox: centre in voxel indices of the working grid.
        volume_ml: volume of its instance mask.
        region: `anatomy.labels.Region` name (lobar / deep / infratentorial).
        extra: anything type-specific (diameter_mm, lobe, side, ...).
    """

    id: int
    type: str
    subtype: str
    centre_vox: tuple[float, float, float]
    volume_ml: float
    region: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class LesionSet:
    """What one generator inserted: the task, its instance map (0 background, 1..N) and the records."""

    task: str
    instances: np.ndarray
    records: list[LesionRecord]
