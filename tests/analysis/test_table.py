"""Lesion table: known sizes, diameters, centroids and sides on anisotropic, oblique and sagittal grids."""

from __future__ import annotations

import numpy as np
import pytest

from neurolesion.analysis.regions import CaseAnatomy
from neurolesion.analysis.table import LESION_COLUMNS, axial_diameters, lesion_table, max_diameter
from neurolesion.anatomy.labels import Lobe, Region, Side
from neurolesion.errors import InputError
from tests.analysis.phantoms import ellipsoid, grid_affine, rotation, world_coordinates

CENTRE = np.array([-12.0, 20.0, 8.0])

GRIDS = {
    "anisotropic": (np.diag([0.8, 0.8, 2.5]), (56, 56, 22)),
    "oblique": (rotation(0, 25) @ rotation(2, 15) @ np.diag([0.9, 1.1, 1.6]), (64, 64, 50)),
    # sagittal acquisition, LPS-like flips: array axes run P->A... along y, S->I along z, L->R along x
    "sagittal": (np.array([[0.0, 0.0, 2.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]), (62, 62, 22)),
}


def _phantom(name: str, semi_axes: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    linear, shape = GRIDS[name]
    aff = grid_affine(linear, shape, CENTRE)
    return ellipsoid(shape, aff, CENTRE, semi_axes).astype(np.int32), aff


@pytest.mark.parametrize("grid", list(GRIDS))
def test_sphere_volume_diameter_centroid(grid: str) -> None:
    labels, aff = _phantom(grid, (10.0, 10.0, 10.0))
    row = lesion_table(labels, aff, "ccm")[0]
    coarse = max(np.linalg.norm(aff[:3, :3], axis=0))
    assert row["volume_ml"] == pytest.approx(4 / 3 * np.pi * 1000 / 1000, rel=0.06)
    assert row["max_diameter_mm"] == pytest.approx(20.0, abs=coarse)
    assert row["axial_diameter_mm"] == pytest.approx(20.0, abs=coarse)
    assert row["axial_perpendicular_mm"] == pytest.approx(20.0, abs=coarse)
    centroid = np.array([row["centroid_x"], row["centroid_y"], row["centroid_z"]])
    assert np.allclose(centroid, CENTRE, atol=0.3)


@pytest.mark.parametrize("grid", list(GRIDS))
def test_ellipsoid_axial_axes_in_world_plane(grid: str) -> None:
    # long axis along world x (15), then y (8) in the axial plane, short along z (5)
    labels, aff = _phantom(grid, (15.0, 8.0, 5.0))
    row = lesion_table(labels, aff, "tumor")[0]
    coarse = max(np.linalg.norm(aff[:3, :3], axis=0))
    assert row["max_diameter_mm"] == pytest.approx(30.0, abs=coarse)
    assert row["axial_diameter_mm"] == pytest.approx(30.0, abs=coarse)
    assert row["axial_perpendicular_mm"] == pytest.approx(16.0, abs=coarse)


def test_tilted_ellipsoid_axial_differs_from_3d() -> None:
    # long axis tilted 60 degrees out of the axial plane: the axial diameter is much shorter than 3D
    aff = np.eye(4)
    aff[:3, 3] = -30
    mm = world_coordinates((61, 61, 61), aff)
    r = rotation(1, 60).T  # world -> ellipsoid frame
    local = np.tensordot(r, mm, axes=1)
    labels = ((local[0] / 20) ** 2 + (local[1] / 5) ** 2 + (local[2] / 5) ** 2 <= 1).astype(np.uint8)
    mask = labels.astype(bool)
    assert max_diameter(mask, np.zeros(3), aff) == pytest.approx(40.0, abs=1.5)
    axial, perp = axial_diameters(mask, np.zeros(3), aff)
    assert 10.0 < axial < 25.0
    assert perp == pytest.approx(10.0, abs=1.5)


def test_single_voxel_and_columns() -> None:
    labels = np.zeros((8, 8, 8), np.uint16)
    labels[2, 3, 4] = 7
    prob = np.zeros((8, 8, 8), np.float32)
    prob[2, 3, 4] = 0.8
    prob[5, 5, 5] = 0.99  # outside the lesion: ignored
    rows = lesion_table(labels, np.diag([0.5, 0.5, 3.0, 1.0]), "cmb", prob=prob)
    assert len(rows) == 1
    row = rows[0]
    assert tuple(row) == LESION_COLUMNS
    assert row["id"] == 7 and row["type"] == "cmb" and row["subtype"] == ""
    assert row["volume_ml"] == pytest.approx(0.00075, abs=1e-4)
    assert row["max_diameter_mm"] == pytest.approx(3.0)
    assert (row["axial_diameter_mm"], row["axial_perpendicular_mm"]) == (0.5, 0.5)
    assert row["confidence"] == pytest.approx(0.8)
    assert row["region"] == "" and row["brainstem"] is None


def test_types_subtypes_and_ids_sorted() -> None:
    labels = np.zeros((20, 20, 20), np.int32)
    labels[2:4, 2:4, 2:4] = 5
    labels[10:14, 10:14, 10:14] = 2
    rows = lesion_table(labels, np.eye(4), "tumor", types={2: "metastasis", 5: "meningioma/atypical"})
    assert [r["id"] for r in rows] == [2, 5]
    assert (rows[0]["type"], rows[0]["subtype"]) == ("metastasis", "")
    assert (rows[1]["type"], rows[1]["subtype"]) == ("meningioma", "atypical")
    assert lesion_table(labels, np.eye(4), "tumor")[0]["type"] == "tumor"
    assert lesion_table(np.zeros((4, 4, 4), np.int32), np.eye(4), "wmh") == []


def _sided_anatomy(shape: tuple[int, int, int], aff: np.ndarray) -> CaseAnatomy:
    """Left/right by the sign of world x, a 'brainstem' where world z < -20, frontal elsewhere."""
    mm = world_coordinates(shape, aff)
    side = np.where(mm[0] < 0, Side.LEFT, Side.RIGHT).astype(np.uint8)
    stem = mm[2] < -20
    lobe = np.where(stem, Lobe.BRAINSTEM, Lobe.FRONTAL).astype(np.uint8)
    region = np.where(stem, Region.INFRATENTORIAL, Region.LOBAR).astype(np.uint8)
    return CaseAnatomy(np.zeros(shape, np.uint8), region, lobe, side, aff)


@pytest.mark.parametrize("flip", [1.0, -1.0])
def test_lesion_on_the_left_is_left(flip: float) -> None:
    shape = (40, 40, 40)
    aff = grid_affine(np.diag([flip * 1.5, 1.5, 1.5]), shape, np.zeros(3))
    anatomy = _sided_anatomy(shape, aff)
    labels = ellipsoid(shape, aff, np.array([-15.0, 0.0, 0.0]), (4.0, 4.0, 4.0)).astype(np.int32)
    labels[ellipsoid(shape, aff, np.array([10.0, 0.0, -24.0]), (3.0, 3.0, 3.0))] = 2
    labels[ellipsoid(shape, aff, np.array([0.0, 15.0, 10.0]), (3.0, 3.0, 3.0))] = 3
    rows = lesion_table(labels, aff, "ccm", anatomy=anatomy)
    assert rows[0]["centroid_x"] < 0
    assert (rows[0]["side"], rows[0]["lobe"], rows[0]["region"], rows[0]["brainstem"]) == (
        "left",
        "frontal",
        "lobar",
        False,
    )
    assert (rows[1]["side"], rows[1]["lobe"], rows[1]["brainstem"]) == ("right", "brainstem", True)
    assert rows[2]["side"] == "midline"
    assert lesion_table(labels, aff, "cmb", anatomy=anatomy)[1]["brainstem"] is None


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="3D"):
        lesion_table(np.zeros((4, 4)), np.eye(4), "wmh")
    with pytest.raises(InputError, match="non-integer"):
        lesion_table(np.full((4, 4, 4), 0.5), np.eye(4), "wmh")
    with pytest.raises(InputError, match="probability map shape"):
        lesion_table(np.zeros((4, 4, 4), np.int32), np.eye(4), "wmh", prob=np.zeros((3, 3, 3)))
