"""White matter hyperintensities: periventricular caps and bands, deep patches and punctate foci, graded by
Fazekas.

Lesions grow from smooth random fields, so their outlines are irregular and, in severe grades, confluent.
Punctate foci (1.5-4 mm, anywhere in the white matter, juxtacortical included) are the small discrete
lesions that make up most of the lesion count on real scans (of small-vessel or inflammatory origin) while
adding little volume.
Juxtacortical foci (off by default; `juxtacortical_count`) sit on the border of white matter and cortex
and may reach into the cortex's deepest layer, as the U-fibre and leukocortical lesions of multiple
sclerosis do: on FLAIR they lie beside a cortex nearly as bright as they are, which a network never sees
if every focus is surrounded by white matter.
They are painted as `LesionTissue.WMH` (bright on FLAIR/T2, dark on T1 in the renderer) onto cerebral white
matter only (never deep grey matter; cortex only for juxtacortical foci, within `cortical_reach_mm` of the
white matter) and, occasionally, onto the pons. Instances are the 26-connected components of what was
painted; components smaller than `min_volume_mm3` are not painted.

Example:
    >>> rng = np.random.default_rng(0)
    >>> lesions = insert(head, rng, fazekas_pv=2, fazekas_deep=2)  # doctest: +SKIP
    >>> lesions.records[0].subtype  # doctest: +SKIP
    'periventricular'
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import edt
import numpy as np
from scipy import ndimage

from neurolesion.anatomy.labels import Tissue
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import placement
from neurolesion.synth.lesions.base import LesionRecord, LesionSet
from neurolesion.synth.lesions.shapes import Vec3, lobulated_blob, mm_grid, smooth_field
from neurolesion.synth.tissues import LesionTissue

GRADES = (0, 1, 2, 3)


@dataclass(frozen=True)
class WMHParams:
    """Parameters of the WMH generator; every per-grade tuple is indexed by the Fazekas grade 0-3.

    Attributes:
        fazekas_pv: periventricular Fazekas grade 0-3 (None: drawn from `grade_probs`, shifted by age).
        fazekas_deep: deep Fazekas grade 0-3 (None: the periventricular grade +/- 1).
        grade_probs: base probabilities of grades 0-3 for a head of age_factor 0.5.
        band_mm: thickness of the periventricular band (grade 1: pencil-thin lining, grade 2: halo).
        band_coverage: fraction of the ventricular surface the band covers (patches from a random field).
        cap_mm: extra thickness at the frontal and occipital horns (caps).
        deep_count: (min, max) number of deep foci.
        deep_diameter_mm: (min, max) diameter of deep foci.
        punctate_count: (min, max) number of punctate foci (any white matter more than 3 mm from the
            ventricles).
        punctate_diameter_mm: (min, max) diameter of punctate foci.
        juxtacortical_count: (min, max) number of juxtacortical foci (default none: the sets simulated before
            they existed stay reproducible from their seeds).
        juxtacortical_diameter_mm: (min, max) diameter of juxtacortical foci.
        juxtacortical_gap_mm: a juxtacortical focus is centred on white matter at most this far from cortex
            (or on the voxels next to it, on a coarser grid).
        cortical_reach_mm: how far into the cortex (from the white matter) a juxtacortical focus may reach.
        pons_probability: probability of a pontine patch.
        pons_diameter_mm: (min, max) diameter of a pontine patch.
        irregularity: relative amplitude of the random field on band thickness and focus outline.
        field_correlation_mm: correlation length of the band's random field.
        min_volume_mm3: components smaller than this are not painted.
    """

    fazekas_pv: int | None = None
    fazekas_deep: int | None = None
    grade_probs: tuple[float, float, float, float] = (0.2, 0.35, 0.28, 0.17)
    band_mm: tuple[float, float, float, float] = (0.0, 1.0, 2.0, 3.5)
    band_coverage: tuple[float, float, float, float] = (0.0, 0.25, 0.8, 1.0)
    cap_mm: tuple[float, float, float, float] = (0.0, 4.0, 5.0, 7.0)
    deep_count: tuple[tuple[int, int], ...] = ((0, 0), (2, 10), (5, 20), (8, 25))
    deep_diameter_mm: tuple[tuple[float, float], ...] = ((2.0, 4.0), (2.0, 6.0), (3.0, 10.0), (4.0, 16.0))
    punctate_count: tuple[tuple[int, int], ...] = ((0, 0), (3, 12), (4, 20), (6, 30))
    punctate_diameter_mm: tuple[float, float] = (1.5, 4.0)
    juxtacortical_count: tuple[tuple[int, int], ...] = ((0, 0), (0, 0), (0, 0), (0, 0))
    juxtacortical_diameter_mm: tuple[float, float] = (2.0, 6.0)
    juxtacortical_gap_mm: float = 1.5
    cortical_reach_mm: float = 1.5
    pons_probability: tuple[float, float, float, float] = (0.0, 0.05, 0.15, 0.35)
    pons_diameter_mm: tuple[float, float] = (4.0, 12.0)
    irregularity: float = 0.5
    field_correlation_mm: float = 10.0
    min_volume_mm3: float = 3.0

    def __post_init__(self) -> None:
        placement.validate(self)
        for name in ("fazekas_pv", "fazekas_deep"):
            value = getattr(self, name)
            if value is not None and value not in GRADES:
                raise ValueError(f"WMHParams.{name}={value!r}; expected a Fazekas grade 0-3 or None")
        if len(self.grade_probs) != 4:
            raise ValueError(f"WMHParams.grade_probs={self.grade_probs!r}; expected 4 weights (grades 0-3)")
        if not 0 <= self.irregularity <= 1:
            raise ValueError(f"WMHParams.irregularity={self.irregularity!r}; expected 0..1")


def draw_grades(params: WMHParams, age_factor: float, rng: np.random.Generator) -> tuple[int, int]:
    """Periventricular and deep Fazekas grades: given, or drawn (older heads get higher grades)."""
    if params.fazekas_pv is None:
        w = np.asarray(params.grade_probs) * np.exp(2.0 * (age_factor - 0.5) * np.arange(4))
        pv = int(rng.choice(4, p=w / w.sum()))
    else:
        pv = params.fazekas_pv
    if params.fazekas_deep is None:
        deep = int(np.clip(pv + rng.choice([-1, 0, 1], p=[0.25, 0.5, 0.25]), 0, 3))
        deep = min(deep, 1) if pv == 0 else deep
    else:
        deep = params.fazekas_deep
    return pv, deep


def periventricular(
    wm: np.ndarray,
    dist_v: np.ndarray,
    y_mm: np.ndarray,
    grade: int,
    params: WMHParams,
    spacing: Vec3,
    rng: np.random.Generator,
) -> np.ndarray:
    """Periventricular WMH on a crop: a band around the ventricles, thicker at the horns (caps).

    Args:
        wm: bool white matter.
        dist_v: distance (mm) to the ventricles.
        y_mm: anterior-posterior coordinate (mm) of each voxel, relative to the ventricles' centre.
        grade: periventricular Fazekas grade.
        params: generator parameters.
        spacing: voxel size (mm).
        rng: random generator.

    Returns:
        bool mask (within `wm`).
    """
    if grade == 0:
        return np.zeros_like(wm)
    half = max(float(np.abs(y_mm[dist_v == 0]).max(initial=1.0)), 1.0)
    capness = np.clip(np.abs(y_mm) / half, 0, 1) ** 4
    field = smooth_field(wm.shape, params.field_correlation_mm, spacing, rng)
    patches = smooth_field(wm.shape, 2 * params.field_correlation_mm, spacing, rng)
    covered = patches >= np.quantile(patches, 1.0 - params.band_coverage[grade])
    irregular = params.irregularity * (0.5 + 0.5 * grade / 3)
    thickness = (params.band_mm[grade] * covered + params.cap_mm[grade] * capness) * (1 + irregular * field)
    return wm & (dist_v > 0) & (dist_v <= thickness)


def insert(head: Head, rng: np.random.Generator, **params: object) -> LesionSet:
    """Paint WMH into `head.labels` and return their instances (connected components) and records.

    Args:
        head: the head (modified in place).
        rng: random generator.
        **params: overrides of `WMHParams` fields.

    Returns:
        LesionSet(task="wmh"); records carry subtype periventricular / juxtacortical / deep / infratentorial and
        extra fazekas (the higher of the two grades), fazekas_pv, fazekas_deep, diameter_mm (equivalent
        sphere), lobe, side.

    Raises:
        ValueError: an unknown parameter or a value out of range.
    """
    p = placement.params_from(WMHParams, params)
    pv_grade, deep_grade = draw_grades(p, head.age_factor, rng)
    spacing = head.spacing
    painted = np.zeros(head.labels.shape, dtype=bool)
    wm_all = head.labels == Tissue.WM
    vent = head.labels == Tissue.VENTRICLE
    dist_v = np.full(head.labels.shape, np.inf, dtype=np.float32)
    if vent.any() and wm_all.any():
        box = placement.bbox(wm_all | vent)
        dist_v[box] = edt.edt(~vent[box], anisotropy=spacing)
        vbox = placement.bbox(vent, margin_vox=int(np.ceil(30.0 / min(spacing))))
        centre = placement.local(np.argwhere(vent).mean(0), vbox)
        anterior = placement.grid_direction(head, (0.0, 1.0, 0.0)).astype(np.float32)
        y_mm = mm_grid(painted[vbox].shape, centre, spacing) @ anterior
        painted[vbox] |= periventricular(wm_all[vbox], dist_v[vbox], y_mm, pv_grade, p, spacing, rng)
    lo, hi = p.deep_count[deep_grade]
    sites = placement.sample_sites(rng, wm_all & (dist_v > 8.0), int(rng.integers(lo, hi + 1)))
    for site in sites:
        _focus(painted, wm_all, site, p.deep_diameter_mm[deep_grade], p, spacing, rng)
    if rng.random() < p.pons_probability[max(pv_grade, deep_grade)]:
        stem = head.labels == Tissue.BRAINSTEM
        for site in placement.sample_sites(rng, placement.pons(head, stem), 1):
            _focus(painted, stem, site, p.pons_diameter_mm, p, spacing, rng)
    # punctate foci come from a child generator: `rng`'s own stream (the draws above and those of the
    # lesion types painted after WMH) stays what it was before they existed
    child = rng.spawn(1)[0]
    lo, hi = p.punctate_count[deep_grade]
    for site in placement.sample_sites(child, wm_all & (dist_v > 3.0), int(child.integers(lo, hi + 1))):
        _focus(painted, wm_all, site, p.punctate_diameter_mm, p, spacing, child)
    lo, hi = p.juxtacortical_count[deep_grade]
    if hi > 0:  # their own generator again, so that enabling them changes no other lesion
        juxtacortical(painted, head, wm_all, child.spawn(1)[0], int(child.integers(lo, hi + 1)), p)
    return _instances(head, painted, dist_v, pv_grade, deep_grade, p)


def juxtacortical(
    painted: np.ndarray, head: Head, wm: np.ndarray, rng: np.random.Generator, n: int, p: WMHParams
) -> None:
    """Add `n` foci centred on white matter next to the cortex, reaching at most `cortical_reach_mm` into it.

    Args:
        painted: bool mask of what is painted so far (modified in place).
        head: the head (read only).
        wm: bool cerebral white matter of `head`.
        rng: random generator.
        n: number of foci.
        p: generator parameters (`juxtacortical_*`, `cortical_reach_mm`).
    """
    cortex = head.labels == Tissue.CORTICAL_GM
    if n <= 0 or not wm.any() or not cortex.any():
        return
    box = placement.bbox(wm | cortex, margin_vox=1)
    gap = max(p.juxtacortical_gap_mm, max(head.spacing))  # at least the voxels next to the cortex
    centres = np.zeros_like(wm)
    centres[box] = wm[box] & (edt.edt(~cortex[box], anisotropy=head.spacing) <= gap)
    allowed = wm.copy()
    allowed[box] |= cortex[box] & (edt.edt(~wm[box], anisotropy=head.spacing) <= p.cortical_reach_mm)
    for site in placement.sample_sites(rng, centres, n):
        _focus(painted, allowed, site, p.juxtacortical_diameter_mm, p, head.spacing, rng)


def _focus(
    painted: np.ndarray,
    allowed: np.ndarray,
    site: np.ndarray,
    diameter_range: tuple[float, float],
    p: WMHParams,
    spacing: Vec3,
    rng: np.random.Generator,
) -> None:
    """Add one irregular focus around `site`, restricted to `allowed`, to `painted` (on a crop only)."""
    d = float(rng.uniform(*diameter_range))
    radii = d / 2 * rng.uniform(0.7, 1.3, 3)
    sl = placement.crop(
        site, float(radii.max()) * (1 + p.irregularity) + max(spacing), spacing, allowed.shape
    )
    blob = lobulated_blob(
        allowed[sl].shape, placement.local(site, sl), radii, spacing, rng, lobulation=p.irregularity
    )
    painted[sl] |= blob & allowed[sl]


def _instances(
    head: Head,
    painted: np.ndarray,
    dist_v: np.ndarray,
    pv_grade: int,
    deep_grade: int,
    p: WMHParams,
) -> LesionSet:
    """Label the painted voxels into components, drop the tiny ones, paint the rest and build records."""
    comps = cc3d.connected_components(painted, connectivity=26).astype(np.int32)
    stats = cc3d.statistics(comps)
    voxel_mm3 = float(np.prod(head.spacing))
    instances = np.zeros(painted.shape, dtype=np.int32)
    records: list[LesionRecord] = []
    near = max(3.0, 1.5 * max(head.spacing))
    for label in range(1, len(stats["voxel_counts"])):
        if stats["voxel_counts"][label] * voxel_mm3 < p.min_volume_mm3:
            continue
        sl = stats["bounding_boxes"][label]
        mask = comps[sl] == label
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        ring = ndimage.binary_dilation(comps[grown] == label, np.ones((3, 3, 3), bool))
        touches_cortex = bool((ring & (head.labels[grown] == Tissue.CORTICAL_GM)).any())
        new_id = len(records) + 1
        instances[sl][mask] = new_id
        head.labels[sl][mask] = LesionTissue.WMH
        rec = placement.make_record(
            head,
            sl,
            mask,
            new_id,
            "wmh",
            "",
            fazekas=max(pv_grade, deep_grade),
            fazekas_pv=pv_grade,
            fazekas_deep=deep_grade,
            diameter_mm=float(2 * (3 * mask.sum() * voxel_mm3 / (4 * np.pi)) ** (1 / 3)),
        )
        if rec.region == "infratentorial":
            rec.subtype = "infratentorial"
        elif float(dist_v[sl][mask].min()) <= near:
            rec.subtype = "periventricular"
        else:
            rec.subtype = "juxtacortical" if touches_cortex else "deep"
        records.append(rec)
    return LesionSet(task="wmh", instances=instances, records=records)
