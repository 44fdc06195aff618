"""A small fake `Head` for the lesion generator tests, built from the MNI152 2009 GM/WM maps of nilearn.

Deep grey matter, ventricles, brainstem and cerebellum are placed by MNI coordinates; skull, scalp, dura,
air cells, vessels, choroid plexus and a petrous ridge beside the pons (with a cerebellopontine angle
cistern) are simple geometric layers. Built once per session at 2 mm.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nilearn import datasets
from scipy import ndimage

from neurolesion.anatomy.labels import Lobe, Region, Side, Tissue
from neurolesion.synth.head import Head

_DATA = Path(datasets.__file__).parent / "data"
_MAP = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"

# (centre MNI mm, semi-axes mm, tissue) of the deep grey nuclei, both sides by mirroring x.
_NUCLEI = (
    ((13.0, 12.0, 10.0), (4.0, 9.0, 8.0), Tissue.CAUDATE),
    ((25.0, 2.0, 1.0), (5.0, 13.0, 8.0), Tissue.PUTAMEN),
    ((18.0, -3.0, 0.0), (3.0, 6.0, 4.0), Tissue.PALLIDUM),
    ((11.0, -18.0, 7.0), (7.0, 12.0, 7.0), Tissue.THALAMUS),
    ((27.0, -18.0, -15.0), (5.0, 14.0, 5.0), Tissue.HIPPOCAMPUS_AMYGDALA),
)


def _load(name: str, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(_DATA / _MAP.format(name))
    data = np.asarray(img.dataobj, dtype=np.float32) / 255.0
    data = ndimage.zoom(data, 1.0 / spacing, order=1)
    affine = img.affine.copy()
    affine[:3, :3] *= spacing
    return data, affine


def build_head(spacing: float = 2.0) -> Head:
    """A labelled head with anatomy codes, regions, lobes and sides on an MNI grid of `spacing` mm."""
    gm, affine = _load("gm", spacing)
    wm, _ = _load("wm", spacing)
    ijk = np.indices(gm.shape, dtype=np.float32)
    x, y, z = (affine[a, a] * ijk[a] + affine[a, 3] for a in range(3))
    brain = ndimage.binary_fill_holes(ndimage.binary_closing(gm + wm > 0.3, iterations=2))
    labels = np.zeros(gm.shape, dtype=np.uint8)
    labels[brain] = Tissue.CSF
    labels[gm > 0.5] = Tissue.CORTICAL_GM
    labels[(wm > 0.5) & (wm >= gm)] = Tissue.WM
    central = (np.abs(x) < 30) & (y > -45) & (y < 30) & (z > -2) & (z < 32)
    labels[central & brain & (gm + wm < 0.4)] = Tissue.VENTRICLE
    for (cx, cy, cz), (ax, ay, az), code in _NUCLEI:
        for sx in (-1.0, 1.0):
            r = ((x - sx * cx) / ax) ** 2 + ((y - cy) / ay) ** 2 + ((z - cz) / az) ** 2
            labels[(r <= 1) & np.isin(labels, [Tissue.CORTICAL_GM, Tissue.WM])] = code
    infra = brain & (z < -10) & ((y < -45) | ((z < -25) & (np.abs(x) < 16) & (y < -10)))
    stem = infra & (np.abs(x) < 13) & (y > -42)
    labels[infra & (labels == Tissue.WM)] = Tissue.CEREBELLAR_WM
    labels[infra & (labels == Tissue.CORTICAL_GM)] = Tissue.CEREBELLAR_GM
    labels[stem & (labels != Tissue.CSF)] = Tissue.BRAINSTEM
    labels[stem & (labels == Tissue.CSF) & (np.abs(x) < 9)] = Tissue.BRAINSTEM
    plexus = ((np.abs(x) - 28) ** 2 + (y + 38) ** 2 + (z - 14) ** 2 < 36) & (labels == Tissue.VENTRICLE)
    labels[plexus] = Tissue.CHOROID_PLEXUS
    outside = ndimage.distance_transform_edt(~brain, sampling=spacing)
    labels[(outside > 0) & (outside <= 3)] = Tissue.CSF
    labels[(outside > 3) & (outside <= 4.5)] = Tissue.DURA
    labels[(outside > 4.5) & (outside <= 10)] = Tissue.SKULL
    labels[(outside > 10) & (outside <= 15)] = Tissue.SCALP
    labels[(np.abs(x) < 2.5) & (z > 40) & (outside > 0) & (outside <= 3)] = Tissue.VESSEL
    air = ((np.abs(x) < 14) & (y > 0) & (y < 30) & (z > -40) & (z < -22)) | (
        ((np.abs(x) - 45) ** 2 + (y + 25) ** 2 + (z + 38) ** 2) < 64
    )
    labels[air & np.isin(labels, [Tissue.SKULL, Tissue.SCALP, Tissue.DURA])] = Tissue.SINUS_AIR

    cpa_box = brain & (y > -40) & (y < -8) & (z > -58) & (z < -40)
    labels[cpa_box & (np.abs(x) >= 14) & (np.abs(x) < 23)] = Tissue.CSF
    labels[cpa_box & (np.abs(x) >= 23) & (np.abs(x) < 45)] = Tissue.SKULL  # petrous ridge

    regions = np.zeros_like(labels)
    in_brain = np.isin(labels, [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 14, 15])
    regions[in_brain] = Region.LOBAR
    deep_box = (np.abs(x) < 32) & (y > -35) & (y < 25) & (z > -8) & (z < 20)
    deep_codes = [Tissue.CAUDATE, Tissue.PUTAMEN, Tissue.PALLIDUM, Tissue.THALAMUS]
    regions[in_brain & (np.isin(labels, deep_codes) | (deep_box & (labels == Tissue.WM)))] = Region.DEEP
    infra_codes = [Tissue.BRAINSTEM, Tissue.CEREBELLAR_GM, Tissue.CEREBELLAR_WM]
    regions[np.isin(labels, infra_codes)] = Region.INFRATENTORIAL

    lobes = np.zeros_like(labels)
    lobes[in_brain] = np.where(y > -10, Lobe.FRONTAL, Lobe.PARIETAL)[in_brain]
    lobes[in_brain & (z < 0) & (np.abs(x) > 30)] = Lobe.TEMPORAL
    lobes[in_brain & (y < -70)] = Lobe.OCCIPITAL
    lobes[np.isin(labels, [Tissue.CAUDATE, Tissue.PUTAMEN, Tissue.PALLIDUM])] = Lobe.BASAL_GANGLIA
    lobes[labels == Tissue.THALAMUS] = Lobe.THALAMUS
    lobes[labels == Tissue.BRAINSTEM] = Lobe.BRAINSTEM
    lobes[np.isin(labels, [Tissue.CEREBELLAR_GM, Tissue.CEREBELLAR_WM])] = Lobe.CEREBELLUM
    sides = np.where(x < 0, Side.LEFT, Side.RIGHT).astype(np.uint8)
    sides[labels == 0] = Side.NONE
    return Head(labels=labels, regions=regions, lobes=lobes, sides=sides, affine=affine, age_factor=0.7)


def _copy(head: Head) -> Head:
    return Head(
        labels=head.labels.copy(),
        regions=head.regions.copy(),
        lobes=head.lobes.copy(),
        sides=head.sides.copy(),
        affine=head.affine.copy(),
        age_factor=head.age_factor,
    )


@pytest.fixture(scope="session")
def template_head() -> Head:
    return build_head(2.0)


@pytest.fixture
def head(template_head: Head) -> Head:
    """A fresh copy of the 2 mm fake head (tests modify it in place)."""
    return _copy(template_head)


@pytest.fixture
def fresh_head(template_head: Head) -> Callable[[], Head]:
    """A factory of fresh copies, for tests that need several heads (determinism)."""
    return lambda: _copy(template_head)
