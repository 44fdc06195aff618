"""The lesion table: one row per lesion with its size, shape, position, anatomy and confidence.

Everything is measured on the label map's own grid, which may be anisotropic and oblique: distances go
through the affine, centroids are scanner RAS mm.

- ``volume_ml``: voxel count x voxel volume.
- ``max_diameter_mm``: the maximum 3D (Feret) diameter, the largest distance between two points of the
  lesion surface. The surface is sampled at the centres of the voxel faces that border the background, so a
  single 1 mm voxel measures 1 mm and a rasterised sphere of diameter D measures D within about a voxel.
- ``axial_diameter_mm`` / ``axial_perpendicular_mm``: RANO-BM bidimensional measurement in the *world*
  axial plane (perpendicular to RAS z): the longest in-plane diameter over all axial sections and, on that
  section, the lesion's extent perpendicular to it (caliper width; for a convex lesion the longest
  perpendicular chord). When the grid's slices are not axial (oblique or sagittal acquisitions), the
  lesion's crop is first resampled (nearest neighbour) onto a world-aligned grid at the finest voxel size.
- ``confidence``: maximum probability inside the lesion (the lesion-wise FROC score).

Example:
    >>> lab = np.zeros((10, 10, 10), np.int32); lab[2:5, 2:5, 2:5] = 1
    >>> row = lesion_table(lab, np.eye(4), "cmb")[0]
    >>> row["volume_ml"], row["max_diameter_mm"], row["axial_diameter_mm"], row["type"]
    (0.027, 4.123, 3.606, 'cmb')
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from neurolesion.errors import InputError
from neurolesion.registry import TASKS

if TYPE_CHECKING:
    from neurolesion.analysis.regions import CaseAnatomy

log = logging.getLogger(__name__)

#: Columns of lesions.csv, in order.
LESION_COLUMNS: tuple[str, ...] = (
    "id",
    "task",
    "type",
    "subtype",
    "volume_ml",
    "max_diameter_mm",
    "axial_diameter_mm",
    "axial_perpendicular_mm",
    "centroid_x",
    "centroid_y",
    "centroid_z",
    "region",
    "lobe",
    "side",
    "brainstem",
    "confidence",
)

#: Tasks whose rows carry the brainstem-involvement flag (empty for the others).
BRAINSTEM_TASKS: frozenset[str] = frozenset({"ccm", "tumor"})

#: Chunk size of the pairwise-distance search (bounds memory for large lesions).
_CHUNK = 2048
#: Below this many points, pairwise distances are cheaper than a convex hull.
_BRUTE_FORCE = 96


def lesion_table(
    labels: np.ndarray,
    affine: np.ndarray,
    task: str,
    *,
    prob: np.ndarray | None = None,
    anatomy: CaseAnatomy | None = None,
    types: Mapping[int, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per lesion id of `labels`, with the `LESION_COLUMNS` keys in order.

    Args:
        labels: (X, Y, Z) integer label map, 0 background, each lesion its own id.
        affine: 4x4 voxel-to-RAS mm matrix of the grid.
        task: the task name (``task`` column; default ``type``).
        prob: probability map on the same grid; ``confidence`` is None without it.
        anatomy: case anatomy on the same grid (region, lobe, side, brainstem); empty strings without it.
        types: lesion id -> ``"type"`` or ``"type/subtype"`` (e.g. ``"metastasis"``); default: the task's
            only lesion type, or the task name.

    Returns:
        Rows sorted by id; mm rounded to 3 decimals, ml and confidence to 4.

    Raises:
        InputError: labels not a 3D non-negative integer map, or prob/anatomy on another grid.

    Example:
        >>> lab = np.zeros((6, 6, 6), np.uint8); lab[1, 1, 1] = 3
        >>> [(r["id"], r["volume_ml"], r["max_diameter_mm"]) for r in lesion_table(lab, np.eye(4), "cmb")]
        [(3, 0.001, 1.0)]
    """
    lab = _check_labels(labels, task)
    aff = np.asarray(affine, dtype=np.float64)
    if prob is not None and np.shape(prob) != lab.shape:
        raise InputError(
            f"{task}: probability map shape {np.shape(prob)} differs from the labels {lab.shape}"
        )
    if anatomy is not None and anatomy.shape != lab.shape:
        raise InputError(f"{task}: anatomy grid {anatomy.shape} differs from the labels {lab.shape}")
    boxes = ndimage.find_objects(lab)
    ids = np.array([i + 1 for i, b in enumerate(boxes) if b is not None], dtype=np.int64)
    if ids.size == 0:
        return []
    counts = np.bincount(lab.ravel(), minlength=int(ids[-1]) + 1)
    voxel_ml = abs(float(np.linalg.det(aff[:3, :3]))) / 1000.0
    probability = None if prob is None else np.asarray(prob)
    default_type = _default_type(task)
    rows = []
    for lesion_id in ids:
        box = boxes[lesion_id - 1]
        assert box is not None  # ids only holds present labels
        mask = lab[box] == lesion_id
        offset = np.array([s.start for s in box], dtype=np.float64)
        centroid = aff[:3, :3] @ (np.argwhere(mask).mean(axis=0) + offset) + aff[:3, 3]
        axial, perp = axial_diameters(mask, offset, aff)
        kind, _, subtype = (types or {}).get(int(lesion_id), default_type).partition("/")
        row: dict[str, Any] = {
            "id": int(lesion_id),
            "task": task,
            "type": kind,
            "subtype": subtype,
            "volume_ml": round(float(counts[lesion_id]) * voxel_ml, 4),
            "max_diameter_mm": round(max_diameter(mask, offset, aff), 3),
            "axial_diameter_mm": round(axial, 3),
            "axial_perpendicular_mm": round(perp, 3),
            "centroid_x": round(float(centroid[0]), 3),
            "centroid_y": round(float(centroid[1]), 3),
            "centroid_z": round(float(centroid[2]), 3),
            "region": "",
            "lobe": "",
            "side": "",
            "brainstem": None,
            "confidence": None if probability is None else round(float(probability[box][mask].max()), 4),
        }
        if anatomy is not None:
            loc = anatomy.locate(mask, box)
            row.update(region=loc.region, lobe=loc.lobe, side=loc.side)
            if task in BRAINSTEM_TASKS:
                row["brainstem"] = loc.brainstem
        rows.append(row)
    return rows


def max_diameter(mask: np.ndarray, offset: np.ndarray, affine: np.ndarray) -> float:
    """Maximum 3D (Feret) diameter in mm of a binary crop placed at voxel `offset` of a grid.

    Example:
        >>> max_diameter(np.ones((1, 1, 4), bool), np.zeros(3), np.diag([1.0, 1.0, 2.0, 1.0]))
        8.0
    """
    pts = face_centres(mask) + offset
    world = pts @ affine[:3, :3].T
    return _max_distance(world)


def axial_diameters(mask: np.ndarray, offset: np.ndarray, affine: np.ndarray) -> tuple[float, float]:
    """Longest diameter in the world axial plane and the extent perpendicular to it, in mm.

    Args:
        mask: binary crop of one lesion.
        offset: voxel index of the crop's first voxel on the full grid.
        affine: 4x4 voxel-to-RAS mm matrix of the full grid.

    Returns:
        (longest, perpendicular) over the axial sections of the lesion; the section with the longest
        diameter is the one measured (ties: the larger perpendicular).

    Example:
        >>> m = np.zeros((5, 3, 2), bool); m[:, 1, :] = True
        >>> axial_diameters(m, np.zeros(3), np.eye(4))
        (5.0, 1.0)
    """
    sections, inplane = _axial_sections(mask, offset, affine)
    pixel = np.linalg.norm(inplane, axis=0)
    bounds = []  # the diagonal of each section's bounding box bounds its longest diameter
    for n, section in enumerate(sections):
        rows, cols = np.nonzero(section.any(axis=1))[0], np.nonzero(section.any(axis=0))[0]
        if rows.size:
            extent = np.array([rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1]) * pixel
            bounds.append((float(np.hypot(*extent)), n))
    best = (0.0, 0.0)
    for bound, n in sorted(bounds, reverse=True):
        if bound < best[0]:
            break
        pts = face_centres(sections[n]) @ inplane.T
        best = max(best, _longest_and_width(pts))
    return best


def face_centres(mask: np.ndarray) -> np.ndarray:
    """(N, D) index coordinates of the centres of the voxel faces between `mask` and background.

    Works for 2D and 3D masks; a voxel's face along axis a sits half a voxel from its centre.

    Example:
        >>> face_centres(np.ones((1, 1), bool)).tolist()
        [[-0.5, 0.0], [0.5, 0.0], [0.0, -0.5], [0.0, 0.5]]
    """
    padded = np.pad(mask.astype(bool), 1)
    out = []
    for axis in range(mask.ndim):
        for step in (-1, 1):
            exposed = padded & ~np.roll(padded, -step, axis=axis)
            idx = np.argwhere(exposed).astype(np.float64) - 1.0
            idx[:, axis] += 0.5 * step
            out.append(idx)
    return np.concatenate(out)


def _hull_points(pts: np.ndarray) -> np.ndarray:
    """The convex-hull vertices of `pts` (all points when the hull is degenerate)."""
    if len(pts) <= _BRUTE_FORCE:
        return pts
    try:
        return pts[ConvexHull(pts).vertices]
    except QhullError:
        return np.unique(pts, axis=0)


def _max_distance(pts: np.ndarray) -> float:
    """Largest pairwise distance (exact: hull vertices, chunked)."""
    hull = _hull_points(pts)
    best = 0.0
    for start in range(0, len(hull), _CHUNK):
        block = hull[start : start + _CHUNK]
        d2 = ((block[:, None, :] - hull[None, :, :]) ** 2).sum(axis=-1)
        best = max(best, float(d2.max()))
    return float(np.sqrt(best))


def _longest_and_width(pts: np.ndarray) -> tuple[float, float]:
    """Longest 2D diameter of `pts` and their extent along the perpendicular direction."""
    hull = _hull_points(pts)
    d2 = ((hull[:, None, :] - hull[None, :, :]) ** 2).sum(axis=-1)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    longest = float(np.sqrt(d2[i, j]))
    if longest == 0.0:
        return 0.0, 0.0
    u = (hull[j] - hull[i]) / longest
    proj = hull @ np.array([-u[1], u[0]])
    return longest, float(proj.max() - proj.min())


def _axial_sections(
    mask: np.ndarray, offset: np.ndarray, affine: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """2D world-axial sections of a lesion crop, and the 2x2 matrix from section index to world x, y mm."""
    lin = affine[:3, :3]
    norms = np.linalg.norm(lin, axis=0)
    zfrac = np.abs(lin[2]) / norms
    slice_axis = int(np.argmax(zfrac))
    others = [a for a in range(3) if a != slice_axis]
    if zfrac[slice_axis] > 1 - 1e-6 and np.all(zfrac[others] < 1e-6):
        sections = [np.take(mask, k, axis=slice_axis) for k in range(mask.shape[slice_axis])]
        return sections, lin[:2][:, others]
    return _world_aligned_sections(mask, offset, affine)


def _world_aligned_sections(
    mask: np.ndarray, offset: np.ndarray, affine: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """Resample a crop (nearest neighbour) onto a RAS-aligned grid at its finest spacing; axial sections."""
    lin = affine[:3, :3]
    step = float(np.linalg.norm(lin, axis=0).min())
    corners = np.array(np.meshgrid(*[[-0.5, n - 0.5] for n in mask.shape], indexing="ij")).reshape(3, -1)
    world = lin @ (corners + offset[:, None])
    lo, hi = world.min(axis=1), world.max(axis=1)
    shape = np.maximum(np.ceil((hi - lo) / step).astype(int), 1)
    # target index t -> world lo + step * (t + 0.5) -> crop index
    inv = np.linalg.inv(lin)
    matrix = inv * step
    shift = inv @ (lo + 0.5 * step) - offset
    out = ndimage.affine_transform(
        mask.astype(np.uint8), matrix, shift, output_shape=tuple(shape), order=0, mode="constant"
    ).astype(bool)
    return [out[:, :, k] for k in range(out.shape[2])], np.eye(2) * step


def _check_labels(labels: np.ndarray, task: str) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 3:
        raise InputError(f"{task}: label map has shape {lab.shape}; expected a 3D (X, Y, Z) array")
    if lab.dtype.kind == "f":
        if not np.all(lab == np.round(lab)):
            raise InputError(f"{task}: label map has non-integer values; expected lesion ids (0 background)")
        lab = lab.astype(np.int32)
    elif lab.dtype.kind == "b":
        lab = lab.astype(np.uint8)
    if lab.dtype.kind not in "ui":
        raise InputError(f"{task}: label map has dtype {lab.dtype}; expected integers")
    if lab.size and int(lab.min()) < 0:
        raise InputError(f"{task}: label map has negative value {int(lab.min())}; expected ids >= 0")
    return lab


def _default_type(task: str) -> str:
    spec = TASKS.get(task)
    if spec is not None and len(spec.lesion_types) == 1:
        return spec.lesion_types[0]
    return task
