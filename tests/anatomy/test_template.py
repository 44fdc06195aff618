"""The derived head anatomy: every required tissue, region and lobe, sides, caching and down-sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurolesion.anatomy.labels import Lobe, Region, Side, Tissue
from neurolesion.anatomy.template import Anatomy, downsample, load_anatomy

REQUIRED = [
    Tissue.CORTICAL_GM,
    Tissue.WM,
    Tissue.CAUDATE,
    Tissue.PUTAMEN,
    Tissue.PALLIDUM,
    Tissue.THALAMUS,
    Tissue.VENTRICLE,
    Tissue.CSF,
    Tissue.BRAINSTEM,
    Tissue.CEREBELLAR_GM,
    Tissue.CEREBELLAR_WM,
    Tissue.SKULL,
    Tissue.SCALP,
    Tissue.BACKGROUND,
]


@pytest.fixture(scope="module")
def anat() -> Anatomy:
    return load_anatomy()


def test_every_required_tissue_region_and_lobe_is_present(anat: Anatomy) -> None:
    present = set(np.unique(anat.labels).tolist())
    assert set(REQUIRED) <= present
    assert {Region.LOBAR, Region.DEEP, Region.INFRATENTORIAL} <= set(np.unique(anat.regions).tolist())
    lobes = set(np.unique(anat.lobes).tolist())
    assert {
        Lobe.FRONTAL,
        Lobe.PARIETAL,
        Lobe.TEMPORAL,
        Lobe.OCCIPITAL,
        Lobe.BRAINSTEM,
        Lobe.CEREBELLUM,
    } <= lobes
    assert anat.spacing == (1.0, 1.0, 1.0)


def test_volumes_are_anatomically_plausible(anat: Anatomy) -> None:
    ml = {t: float((anat.labels == t).sum()) / 1000 for t in REQUIRED}
    brain = ml[Tissue.CORTICAL_GM] + ml[Tissue.WM]
    assert 900 < brain < 1700  # cerebral GM + WM of an adult, ml
    assert 5 < ml[Tissue.VENTRICLE] < 60
    assert 5 < ml[Tissue.THALAMUS] + ml[Tissue.CAUDATE] < 60


def test_regions_follow_the_tissues(anat: Anatomy) -> None:
    infra = anat.regions == Region.INFRATENTORIAL
    assert np.isin(anat.labels[infra], [Tissue.BRAINSTEM, Tissue.CEREBELLAR_GM, Tissue.CEREBELLAR_WM]).all()
    assert (anat.regions[anat.labels == Tissue.PUTAMEN] == Region.DEEP).all()
    assert (anat.regions[np.isin(anat.labels, [Tissue.SKULL, Tissue.SCALP, Tissue.VENTRICLE])] == 0).all()


def test_left_is_left(anat: Anatomy) -> None:
    """Voxels labelled LEFT have negative RAS x (geometry is sacred)."""
    idx = np.argwhere(anat.sides == Side.LEFT)[::500]
    x = anat.affine[0, :3] @ idx.T + anat.affine[0, 3]
    assert (x < 0).all()
    n_left, n_right = (anat.sides == Side.LEFT).sum(), (anat.sides == Side.RIGHT).sum()
    assert abs(n_left - n_right) / n_right < 0.05


def test_cache_round_trip(anat: Anatomy, tmp_path: Path) -> None:
    from neurolesion.anatomy.template import ANATOMY_VERSION

    np.savez_compressed(
        tmp_path / f"anatomy_v{ANATOMY_VERSION}.npz",
        labels=anat.labels,
        regions=anat.regions,
        lobes=anat.lobes,
        sides=anat.sides,
        affine=anat.affine,
    )
    again = load_anatomy(tmp_path)
    assert np.array_equal(again.labels, anat.labels) and np.allclose(again.affine, anat.affine)


def test_downsample_keeps_world_coordinates(anat: Anatomy) -> None:
    small = downsample(anat, 2)
    assert small.spacing == (2.0, 2.0, 2.0)
    i = np.array([10, 20, 30])
    big_i = 2 * i + 1
    assert small.labels[tuple(i)] == anat.labels[tuple(big_i)]
    assert np.allclose(small.affine @ np.append(i, 1), anat.affine @ np.append(big_i, 1))
