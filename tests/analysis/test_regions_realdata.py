"""Atlas registration on the real patient19 FLAIR (already in MNI space): sides and brain overlap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurolesion.analysis.regions import atlas_to_case
from neurolesion.anatomy.labels import Side
from neurolesion.io.nifti import load_nifti
from tests.analysis.phantoms import world_coordinates


@pytest.mark.slow
@pytest.mark.realdata
def test_patient19_atlas_sides_and_overlap(shared_data: Path) -> None:
    flair = load_nifti(shared_data / "real-ms" / "cross_sectional" / "patient19" / "FLAIR.nii.gz")
    anat = atlas_to_case(flair, flair.data > 0)
    assert anat.quality["brain_dice"] > 0.85 and not anat.warnings
    x = world_coordinates(flair.shape, flair.affine)[0]  # the image is in MNI space: x < 0 is left
    sided = anat.side > 0
    assert np.mean((anat.side[sided] == Side.LEFT) == (x[sided] < 0)) > 0.97
