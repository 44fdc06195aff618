"""The derived anatomy: one head label map (tissues, regions, lobes, sides) on the 1 mm MNI working grid.

Built once from the MNI ICBM152 2009 template (nilearn) and the deepmriprep atlases (neuromorphometrics for
deep grey matter, ventricles, brainstem and cerebellum; hammers for the lobes; mori = JHU white matter for the
internal/external capsules and corpus callosum; suit for the cerebellum), then cached as a small ``.npz``
(about 1 MB) so that machines without nibabel (training on a GPU box) only need numpy.

The nilearn T1 template is skull-stripped, so the layers outside the brain are built geometrically from
the intracranial volume: a thin subarachnoid CSF layer, dura, a skull whose thickness varies smoothly
(4-8 mm), scalp (4-7 mm), a frontal sinus and mastoid air cells.

Example:
    >>> anat = load_anatomy()  # doctest: +SKIP
    >>> anat.labels.shape, anat.spacing  # doctest: +SKIP
    ((225, 261, 205), (1.0, 1.0, 1.0))
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from neurolesion.anatomy.labels import Lobe, Region, Side, Tissue

log = logging.getLogger(__name__)

#: Bump when the derivation changes: the cache file name carries it.
ANATOMY_VERSION = 2
#: Added to the WM and CSF probabilities before the tissue argmax.
WM_BIAS, CSF_BIAS = 0.2, 0.15
#: mm of room kept around the intracranial volume for dura, skull and scalp.
MARGIN_MM = 16


@dataclass(frozen=True)
class Anatomy:
    """Label maps of one head on a grid (all uint8, same shape).

    Attributes:
        labels: `Tissue` codes.
        regions: `Region` codes (lobar / deep / infratentorial) inside the brain, 0 elsewhere.
        lobes: `Lobe` codes inside the brain, 0 elsewhere.
        sides: `Side` codes (left / right of the midline) inside the head.
        affine: 4x4 voxel-to-RAS mm matrix.
    """

    labels: np.ndarray
    regions: np.ndarray
    lobes: np.ndarray
    sides: np.ndarray
    affine: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        x, y, z = self.labels.shape
        return (int(x), int(y), int(z))

    @property
    def spacing(self) -> tuple[float, float, float]:
        sx, sy, sz = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(sx), float(sy), float(sz))


def cache_dir() -> Path:
    """Where the derived anatomy is cached: $NEUROLESION_CACHE or ~/.cache/neurolesion."""
    return Path(os.environ.get("NEUROLESION_CACHE", Path.home() / ".cache" / "neurolesion"))


def load_anatomy(folder: Path | None = None) -> Anatomy:
    """The derived anatomy, from the cache when present, else derived (needs nibabel) and cached.

    Args:
        folder: cache folder (default `cache_dir()`).
    """
    path = (folder or cache_dir()) / f"anatomy_v{ANATOMY_VERSION}.npz"
    if path.exists():
        with np.load(path) as z:
            return Anatomy(z["labels"], z["regions"], z["lobes"], z["sides"], z["affine"])
    anat = derive_anatomy()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(
        tmp, labels=anat.labels, regions=anat.regions, lobes=anat.lobes, sides=anat.sides, affine=anat.affine
    )
    tmp.replace(path)
    log.info("derived anatomy cached in %s", path)
    return anat


def downsample(anat: Anatomy, factor: int) -> Anatomy:
    """A coarser copy (every `factor`-th voxel, nearest neighbour), e.g. a 2 mm grid for fast tests.

    Example:
        >>> a = Anatomy(*(np.zeros((4, 4, 4), np.uint8),) * 4, np.eye(4))
        >>> downsample(a, 2).shape
        (2, 2, 2)
    """
    if factor == 1:
        return anat
    off = factor // 2
    sl = (slice(off, None, factor),) * 3
    aff = anat.affine.copy()
    aff[:3, :3] = anat.affine[:3, :3] * factor
    aff[:3, 3] = anat.affine[:3, :3] @ np.full(3, off) + anat.affine[:3, 3]
    return Anatomy(
        np.ascontiguousarray(anat.labels[sl]),
        np.ascontiguousarray(anat.regions[sl]),
        np.ascontiguousarray(anat.lobes[sl]),
        np.ascontiguousarray(anat.sides[sl]),
        aff,
    )


def derive_anatomy() -> Anatomy:
    """Derive the head label map, regions and lobes from the shipped template and atlases (a few seconds)."""
    from neurolesion.anatomy.atlases import atlas_names, ids_matching, load_atlas, template_grid

    grid = template_grid()
    nm = load_atlas("neuromorphometrics", grid)
    ham = load_atlas("hammers", grid)
    mori = load_atlas("mori", grid)
    suit = load_atlas("suit", grid)
    nmn, hamn, morin = atlas_names("neuromorphometrics"), atlas_names("hammers"), atlas_names("mori")

    def nm_is(*words: str) -> np.ndarray:
        return np.isin(nm, ids_matching(nmn, *words))

    inside = ndimage.binary_fill_holes(grid.t1 > 0.02)
    gm, wm = grid.gm * inside, grid.wm * inside
    csf = np.clip(inside - gm - wm, 0, 1)
    # the 2009 GM map is generous (partial volume): favouring WM and CSF gives adult volumes and a GM/WM
    # ratio of about 1.3 instead of 1.7 (it shifts the z-score of every tissue on normalised images)
    cls = np.argmax(np.stack([csf + CSF_BIAS, gm, wm + WM_BIAS]), axis=0)
    labels = np.where(cls == 0, Tissue.CSF, np.where(cls == 1, Tissue.CORTICAL_GM, Tissue.WM)).astype(
        np.uint8
    )
    labels[~inside] = Tissue.BACKGROUND
    fluid = (csf >= 0.35) & inside
    labels[nm_is("ventricle", "inf lat vent") & fluid] = Tissue.VENTRICLE
    solid = inside & ~fluid
    cereb = (nm_is("cerebellum", "cerebellar") | (suit > 0)) & solid & ~nm_is("brain stem")
    labels[cereb & (cls == 1)] = Tissue.CEREBELLAR_GM
    labels[cereb & (cls == 2)] = Tissue.CEREBELLAR_WM
    labels[nm_is("brain stem") & solid] = Tissue.BRAINSTEM
    for words, code in (
        (("hippocampus", "amygdala"), Tissue.HIPPOCAMPUS_AMYGDALA),
        (("caudate", "accumbens"), Tissue.CAUDATE),
        (("putamen",), Tissue.PUTAMEN),
        (("pallidum",), Tissue.PALLIDUM),
        (("thalamus",), Tissue.THALAMUS),
    ):
        labels[nm_is(*words) & solid] = code

    mm = _mm_coordinates(grid.shape, grid.affine)
    _add_choroid_plexus(labels, nm_is("lateral ventricle"), mm)
    labels[(labels == Tissue.CSF) & (np.abs(mm[0]) < 0.6) & (mm[2] > 0)] = Tissue.DURA  # falx
    regions, lobes = _regions_and_lobes(labels, ham, hamn, mori, morin)

    pad = MARGIN_MM
    labels = np.pad(labels, pad)
    regions, lobes = np.pad(regions, pad), np.pad(lobes, pad)
    affine = grid.affine.copy()
    affine[:3, 3] -= affine[:3, :3] @ np.full(3, pad)
    _add_head_layers(labels, affine)
    mm = _mm_coordinates(labels.shape, affine)
    sides = np.where(mm[0] < -0.5, Side.LEFT, np.where(mm[0] > 0.5, Side.RIGHT, Side.NONE)).astype(np.uint8)
    sides[labels == Tissue.BACKGROUND] = Side.NONE
    crop = _bbox(labels > 0, margin=2)
    lab, reg, lob, sid = (np.ascontiguousarray(a[crop]) for a in (labels, regions, lobes, sides))
    return Anatomy(lab, reg, lob, sid, _crop_affine(affine, crop))


def _mm_coordinates(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """(3, X, Y, Z) float32 RAS mm of every voxel."""
    idx = np.indices(shape, dtype=np.float32).reshape(3, -1)
    mm = affine[:3, :3].astype(np.float32) @ idx + affine[:3, 3:4].astype(np.float32)
    return mm.reshape(3, *shape)


def _add_choroid_plexus(labels: np.ndarray, lateral: np.ndarray, mm: np.ndarray) -> None:
    """Glomus of the choroid plexus in the atria of the lateral ventricles."""
    vent = (labels == Tissue.VENTRICLE) & lateral
    core = ndimage.binary_erosion(vent) & (mm[1] > -45) & (mm[1] < -25) & (mm[2] > 0) & (mm[2] < 20)
    labels[core] = Tissue.CHOROID_PLEXUS


def _regions_and_lobes(
    labels: np.ndarray, ham: np.ndarray, hamn: dict[int, str], mori: np.ndarray, morin: dict[int, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Region (lobar / deep / infratentorial) and lobe of every brain voxel."""
    from neurolesion.anatomy.atlases import ids_matching

    lobe_of = {
        Lobe.FRONTAL: ("fl ",),
        Lobe.PARIETAL: ("pl ",),
        Lobe.TEMPORAL: ("tl ",),
        Lobe.OCCIPITAL: ("ol ",),
        Lobe.INSULA: ("insula",),
        Lobe.CINGULATE: ("cg ",),
    }
    cortical = np.zeros(labels.shape, np.uint8)
    for lobe, words in lobe_of.items():
        cortical[
            np.isin(ham, [i for i in ids_matching(hamn, *words) if hamn[i].lower().startswith(words)])
        ] = lobe
    # every voxel takes the lobe of the nearest lobe-labelled voxel
    idx = ndimage.distance_transform_edt(cortical == 0, return_distances=False, return_indices=True)
    lobes = cortical[tuple(idx)]

    vent_dist = ndimage.distance_transform_edt(labels != Tissue.VENTRICLE)
    brain = np.isin(labels, [t for t in Tissue if t not in _NON_BRAIN])
    wm = labels == Tissue.WM
    deep_wm = wm & (vent_dist <= 10)
    lobes[deep_wm] = Lobe.PERIVENTRICULAR_DEEP_WM
    for words, lobe in (
        (("callosum",), Lobe.CORPUS_CALLOSUM),
        (("capsule external",), Lobe.EXTERNAL_CAPSULE),
        (("internal",), Lobe.INTERNAL_CAPSULE),
    ):
        lobes[np.isin(mori, ids_matching(morin, *words)) & wm] = lobe
    lobes[np.isin(labels, [Tissue.CAUDATE, Tissue.PUTAMEN, Tissue.PALLIDUM])] = Lobe.BASAL_GANGLIA
    lobes[labels == Tissue.THALAMUS] = Lobe.THALAMUS
    lobes[labels == Tissue.BRAINSTEM] = Lobe.BRAINSTEM
    lobes[np.isin(labels, [Tissue.CEREBELLAR_GM, Tissue.CEREBELLAR_WM])] = Lobe.CEREBELLUM
    lobes[~brain | np.isin(labels, [Tissue.VENTRICLE, Tissue.CHOROID_PLEXUS])] = Lobe.NONE

    regions = np.zeros(labels.shape, np.uint8)
    regions[
        np.isin(
            lobes, [Lobe.FRONTAL, Lobe.PARIETAL, Lobe.TEMPORAL, Lobe.OCCIPITAL, Lobe.INSULA, Lobe.CINGULATE]
        )
    ] = Region.LOBAR
    regions[np.isin(lobes, [*range(Lobe.BASAL_GANGLIA, Lobe.PERIVENTRICULAR_DEEP_WM + 1)])] = Region.DEEP
    regions[np.isin(lobes, [Lobe.BRAINSTEM, Lobe.CEREBELLUM])] = Region.INFRATENTORIAL
    return regions, lobes


_NON_BRAIN = frozenset(
    {
        Tissue.BACKGROUND,
        Tissue.CSF,
        Tissue.SKULL,
        Tissue.SCALP,
        Tissue.VESSEL,
        Tissue.SINUS_AIR,
        Tissue.EYE,
        Tissue.DURA,
    }
)


def _add_head_layers(labels: np.ndarray, affine: np.ndarray) -> None:
    """Subarachnoid CSF, dura, venous sinuses, skull, scalp and air cells around the intracranial volume."""
    rng = np.random.default_rng(20090)  # fixed: the template is deterministic
    brain = labels > 0
    # the template stops at the medulla: continue the lowest slice downwards as the neck's footprint
    zlow = int(np.nonzero(brain.any(axis=(0, 1)))[0][0])
    brain[:, :, :zlow] = ndimage.binary_dilation(brain[:, :, zlow], iterations=3)[:, :, None]
    outside = ndimage.distance_transform_edt(~brain)
    thickness = _smooth_field(labels.shape, rng, low=4.0, high=8.0)
    csf = (outside > 0) & (outside <= 2.0)
    dura = (outside > 2.0) & (outside <= 3.0)
    skull = (outside > 3.0) & (outside <= 3.0 + thickness)
    scalp = (outside > 3.0 + thickness) & (outside <= 8.0 + thickness)
    neck = np.zeros_like(brain)
    neck[:, :, :zlow] = True
    labels[csf & ~neck] = Tissue.CSF
    labels[dura & ~neck] = Tissue.DURA
    labels[skull] = Tissue.SKULL
    labels[scalp] = Tissue.SCALP
    labels[(csf | dura) & neck] = Tissue.SCALP
    mm = _mm_coordinates(labels.shape, affine)
    # superior sagittal sinus and transverse sinuses in the dural layer
    sss = (np.abs(mm[0]) < 4) & (mm[2] > -5) & (outside > 0.5) & (outside <= 3.0)
    transverse = (np.abs(mm[2] + 8) < 4) & (mm[1] < -70) & (outside > 0.5) & (outside <= 3.0)
    labels[(sss | transverse) & ~neck] = Tissue.VESSEL
    for centre, radii in (
        ((0, 62, 8), (14, 6, 10)),
        ((-52, -28, -32), (8, 10, 8)),
        ((52, -28, -32), (8, 10, 8)),
    ):
        d = sum(((mm[i] - centre[i]) / radii[i]) ** 2 for i in range(3))
        labels[(d <= 1) & np.isin(labels, [Tissue.SKULL])] = Tissue.SINUS_AIR


def _smooth_field(shape: tuple[int, ...], rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    """A smooth random field with values in [low, high] (a 5^3 random grid, cubic zoom)."""
    coarse = rng.uniform(low, high, size=(5, 5, 5))
    return np.clip(
        ndimage.zoom(coarse, [s / 5 for s in shape], order=3)[tuple(slice(0, s) for s in shape)], low, high
    )


def _bbox(mask: np.ndarray, margin: int) -> tuple[slice, slice, slice]:
    sl = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        nz = np.nonzero(mask.any(axis=other))[0]
        sl.append(slice(max(int(nz[0]) - margin, 0), min(int(nz[-1]) + margin + 1, mask.shape[axis])))
    return (sl[0], sl[1], sl[2])


def _crop_affine(affine: np.ndarray, crop: tuple[slice, slice, slice]) -> np.ndarray:
    out = affine.copy()
    start = np.array([s.start for s in crop], dtype=np.float64)
    out[:3, 3] = affine[:3, :3] @ start + affine[:3, 3]
    return out
