"""Synthetic phantoms with known geometry for the analysis tests (any grid: anisotropic, oblique, sagittal)."""

from __future__ import annotations

import numpy as np


def rotation(axis: int, degrees: float) -> np.ndarray:
    """3x3 rotation about world axis `axis`."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def grid_affine(linear: np.ndarray, shape: tuple[int, int, int], centre_mm: np.ndarray) -> np.ndarray:
    """4x4 affine with the given 3x3 part whose array centre lands on `centre_mm`."""
    aff = np.eye(4)
    aff[:3, :3] = linear
    aff[:3, 3] = np.asarray(centre_mm) - linear @ ((np.asarray(shape) - 1) / 2)
    return aff


def world_coordinates(shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """(3, X, Y, Z) RAS mm of every voxel centre."""
    idx = np.indices(shape, dtype=np.float64).reshape(3, -1)
    return (affine[:3, :3] @ idx + affine[:3, 3:4]).reshape(3, *shape)


def ellipsoid(
    shape: tuple[int, int, int], affine: np.ndarray, centre: np.ndarray, semi_axes: tuple[float, float, float]
) -> np.ndarray:
    """Boolean ellipsoid with world-aligned semi-axes (mm) at `centre` (RAS mm)."""
    mm = world_coordinates(shape, affine)
    d = sum(((mm[i] - centre[i]) / semi_axes[i]) ** 2 for i in range(3))
    return np.asarray(d <= 1.0)


def head_phantom(mm: np.ndarray) -> dict[str, np.ndarray]:
    """An analytic 'brain' evaluated at MNI-like coordinates `mm` (3, ...): intensities and label maps.

    A 70x85x60 mm ellipsoid brain (T1-like: bright), dark ventricles, a bright blob front-left, a darker
    one back-right (so that no rotation or flip fits as well) and a brainstem cylinder below. Lobes: frontal (y > 0), occipital (y <= 0), brainstem;
    sides by the sign of x (x < 0 is the patient's left).
    """
    from neurolesion.anatomy.labels import Lobe, Region, Side, Tissue

    x, y, z = mm
    brain = (x / 70) ** 2 + (y / 85) ** 2 + (z / 60) ** 2 <= 1
    vent = ((x / 14) ** 2 + (y / 30) ** 2 + ((z - 8) / 12) ** 2 <= 1) & brain
    blob = ((x + 30) / 15) ** 2 + ((y - 40) / 15) ** 2 + ((z - 20) / 15) ** 2 <= 1
    stem = (x**2 + (y + 10) ** 2 <= 12**2) & (z < -35) & (z > -75)
    head = brain | stem
    dark = ((x - 35) / 12) ** 2 + ((y + 45) / 18) ** 2 + ((z + 5) / 12) ** 2 <= 1
    t1 = np.where(head, 0.6, 0.0) + 0.3 * (blob & brain) - 0.2 * (dark & brain) - 0.45 * vent
    t1 = t1 + 0.15 * (stem & ~brain)
    tissue = np.where(vent, Tissue.VENTRICLE, np.where(head, Tissue.WM, Tissue.BACKGROUND))
    lobe = np.where(y > 0, Lobe.FRONTAL, Lobe.OCCIPITAL)
    lobe = np.where(stem & ~brain, Lobe.BRAINSTEM, lobe)
    lobe = np.where(head & ~vent, lobe, Lobe.NONE)
    region = np.where(lobe == Lobe.BRAINSTEM, Region.INFRATENTORIAL, np.where(lobe > 0, Region.LOBAR, 0))
    side = np.where(head, np.where(x < 0, Side.LEFT, Side.RIGHT), Side.NONE)
    return {
        "t1": t1.astype(np.float32),
        "tissue": tissue.astype(np.uint8),
        "lobe": lobe.astype(np.uint8),
        "region": region.astype(np.uint8),
        "side": side.astype(np.uint8),
    }
