"""Cerebral cavernous malformations: lobulated "popcorn" lesions graded by Zabramski type.

* Type I (subacute haemorrhage): a lobulated core of methaemoglobin (`CCM_CORE`, bright on T1), sometimes
  with a fluid-fluid level (`CCM_FLUID` in the dependent, posterior part of the supine head), thin or no
  hemosiderin rim (`CCM_RIM`).
* Type II (classic popcorn): a mulberry cluster of locules of mixed-age blood (`CCM_CORE` and `CCM_FLUID`)
  separated by hemosiderin septa (reticulated core) inside a thick dark hemosiderin rim.
* Type III (chronic): mostly rim material (dark on every sequence) around a small core.
* Type IV (punctate): a tiny hemosiderin focus, CMB-like.

Lesions (3 mm to 4 cm; type IV 2-4 mm) are single (sporadic) or multiple (familial, with many type IV),
lobar, deep, in the brainstem (common in radiosurgery series) or the cerebellum. The instance is the whole
lesion: core, fluid and rim. Large lesions push the surrounding tissue first.

Example:
    >>> rng = np.random.default_rng(0)
    >>> lesions = insert(head, rng, count=1, zabramski=2)  # doctest: +SKIP
    >>> lesions.records[0].subtype  # doctest: +SKIP
    'II'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurolesion.anatomy.labels import DEEP_GM, PARENCHYMA, Region, Tissue
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import placement
from neurolesion.synth.lesions.base import LesionRecord, LesionSet
from neurolesion.synth.lesions.shapes import (
    Vec3,
    boundaries,
    ellipsoid,
    ellipsoid_radius,
    largest_component,
    lobulated_blob,
    mm_grid,
    shell,
    sphere_cluster,
)
from neurolesion.synth.tissues import LesionTissue

TYPES = ("I", "II", "III", "IV")
LOCATIONS = ("lobar", "deep", "brainstem", "cerebellum")


@dataclass(frozen=True)
class CCMParams:
    """Parameters of the CCM generator.

    Attributes:
        count: number of CCMs (None: 1, or with `p_multiple` a familial count >= 2 up to `max_count`).
        p_multiple: probability of multiple (familial) CCMs.
        familial_mean: mean count of a familial case.
        max_count: upper bound on the count.
        zabramski: force every lesion's type 1-4 (None: drawn).
        type_probs: probabilities of types I-IV for a single lesion.
        familial_type_probs: probabilities of types I-IV in a familial case (mostly type IV).
        diameter_mm: (min, max) diameter for each type I-IV, drawn log-uniformly.
        location_probs: lobar / deep / brainstem / cerebellum.
        rim_mm: (min, max) hemosiderin rim thickness of type II (type I: half, type III: most of the lesion).
        fluid_level_probability: probability of a fluid-fluid level in a type I lesion.
        mass_effect_min_mm: lesions at least this large push the surrounding tissue.
        min_inside: fraction of a lesion that must fall on parenchyma.
        tries: sites tried per lesion.
    """

    count: int | None = None
    p_multiple: float = 0.25
    familial_mean: float = 5.0
    max_count: int = 20
    zabramski: int | None = None
    type_probs: tuple[float, float, float, float] = (0.2, 0.55, 0.2, 0.05)
    familial_type_probs: tuple[float, float, float, float] = (0.05, 0.25, 0.15, 0.55)
    diameter_mm: tuple[tuple[float, float], ...] = ((5.0, 40.0), (5.0, 40.0), (3.0, 20.0), (2.0, 4.0))
    location_probs: tuple[float, float, float, float] = (0.5, 0.1, 0.25, 0.15)
    rim_mm: tuple[float, float] = (1.5, 3.0)
    fluid_level_probability: float = 0.3
    mass_effect_min_mm: float = 20.0
    min_inside: float = 0.8
    tries: int = 20

    def __post_init__(self) -> None:
        placement.validate(self)
        if self.zabramski is not None and self.zabramski not in (1, 2, 3, 4):
            raise ValueError(f"CCMParams.zabramski={self.zabramski!r}; expected a type 1-4 or None")
        if self.count is not None and not 0 <= self.count <= self.max_count:
            raise ValueError(f"CCMParams.count={self.count!r}; expected 0..{self.max_count} or None")


def site_masks(head: Head) -> dict[str, np.ndarray]:
    """Candidate centres: lobar grey/white matter, deep grey nuclei, brainstem and cerebellum."""
    lab = head.labels
    lobar = placement.allowed(lab, {Tissue.CORTICAL_GM, Tissue.WM}) & (head.regions == Region.LOBAR)
    return {
        "lobar": lobar,
        "deep": placement.allowed(lab, DEEP_GM),
        "brainstem": lab == Tissue.BRAINSTEM,
        "cerebellum": placement.allowed(lab, {Tissue.CEREBELLAR_GM, Tissue.CEREBELLAR_WM}),
    }


def layers(
    shape: tuple[int, ...],
    centre: Vec3,
    diameter_mm: float,
    kind: int,
    down: np.ndarray,
    p: CCMParams,
    spacing: Vec3,
    rng: np.random.Generator,
) -> list[tuple[int, np.ndarray]]:
    """The painted layers (code, mask) of one CCM of Zabramski `kind` (1-4) on a crop, rim first.

    Args:
        shape: crop shape.
        centre: lesion centre in crop voxel coordinates.
        diameter_mm: overall diameter.
        kind: Zabramski type 1-4.
        down: unit vector (grid mm frame) of gravity for a supine head (posterior), for fluid levels.
        p: generator parameters.
        spacing: voxel size in mm.
        rng: random generator.

    Returns:
        [(CCM_RIM, rim), (CCM_FLUID, fluid), (CCM_CORE, core)]; masks may be empty.
    """
    r = diameter_mm / 2
    empty = np.zeros(shape, dtype=bool)
    if kind == 4:
        return [
            (LesionTissue.CCM_RIM, ellipsoid(shape, centre, (r, r, r), spacing)),
            (LesionTissue.CCM_FLUID, empty),
            (LesionTissue.CCM_CORE, empty),
        ]
    if kind == 2:
        n_lobules = int(rng.integers(3, 9))
        body, lobule = sphere_cluster(shape, centre, 0.8 * r, spacing, rng, n_lobules)
        fluid_ids = 1 + np.flatnonzero(rng.random(n_lobules + 1) < 0.35)
        septa = boundaries(lobule) & (rng.random(shape) < 0.7)
        fluid = body & np.isin(lobule, fluid_ids) & ~septa
        rim_t = float(rng.uniform(*p.rim_mm))
    else:
        body = lobulated_blob(shape, centre, (r, r, r) * rng.uniform(0.75, 1.0, 3), spacing, rng, 0.2)
        fluid = empty
        if kind == 1 and rng.random() < p.fluid_level_probability:
            depth = mm_grid(shape, centre, spacing) @ down.astype(np.float32)
            fluid = body & (ellipsoid_radius(shape, centre, (r, r, r), spacing) < 0.7) & (depth > 0)
        rim_t = float(rng.uniform(*p.rim_mm)) / 2 if kind == 1 else 0.0
    if kind == 3:
        core = body & (ellipsoid_radius(shape, centre, (r, r, r), spacing) < 0.4)
        core &= core.sum() < 0.25 * body.sum()  # too small to show a core on this grid: all rim
        return [
            (LesionTissue.CCM_RIM, body & ~core),
            (LesionTissue.CCM_FLUID, empty),
            (LesionTissue.CCM_CORE, core),
        ]
    rim = shell(body, rim_t, spacing) if rim_t > 0 else empty
    if kind == 2:
        rim |= septa
    return [
        (LesionTissue.CCM_RIM, rim),
        (LesionTissue.CCM_FLUID, fluid),
        (LesionTissue.CCM_CORE, body & ~fluid),
    ]


def insert(head: Head, rng: np.random.Generator, **params: object) -> LesionSet:
    """Paint CCMs into `head.labels` and return one instance per lesion (core, fluid and rim).

    Args:
        head: the head (modified in place; large lesions also displace regions, lobes and sides).
        rng: random generator.
        **params: overrides of `CCMParams` fields.

    Returns:
        LesionSet(task="ccm"); records: subtype the Zabramski type I-IV, extra zabramski (1-4), location
        (lobar / deep / brainstem / cerebellum), diameter_mm, familial, lobe, side.

    Raises:
        ValueError: an unknown parameter or a value out of range.
    """
    p = placement.params_from(CCMParams, params)
    familial = rng.random() < p.p_multiple
    n = (
        p.count
        if p.count is not None
        else (min(p.max_count, 1 + int(rng.geometric(1 / p.familial_mean))) if familial else 1)
    )
    familial = n > 1
    type_p = np.asarray(p.familial_type_probs if familial else p.type_probs, dtype=float)
    sites = {k: placement.Sites(m) for k, m in site_masks(head).items()}
    loc_p = np.asarray(p.location_probs, dtype=float) * [sites[k].size > 0 for k in LOCATIONS]
    sp = head.spacing
    down = placement.grid_direction(head, (0.0, -1.0, 0.0))
    instances = np.zeros(head.labels.shape, dtype=np.int32)
    records: list[LesionRecord] = []
    for _ in range(n if loc_p.sum() > 0 else 0):
        kind = p.zabramski or 1 + int(rng.choice(4, p=type_p / type_p.sum()))
        for _ in range(p.tries):
            where = LOCATIONS[int(rng.choice(4, p=loc_p / loc_p.sum()))]
            site = sites[where].draw(rng)
            d = float(np.exp(rng.uniform(*np.log(p.diameter_mm[kind - 1]))))
            sl = placement.crop(site, d / 2 * 1.3 + p.rim_mm[1] + 2 * max(sp), sp, head.labels.shape)
            centre = placement.local(site, sl)
            parts = layers(head.labels[sl].shape, centre, d, kind, down, p, sp, rng)
            whole = np.logical_or.reduce([m for _, m in parts])
            if not placement.fits(head.labels[sl], whole, PARENCHYMA, p.min_inside):
                continue
            if d >= p.mass_effect_min_mm:
                placement.push_radially(head, site, 0.5 * d / 2, d / 2 + max(10.0, d / 2))
            lab = head.labels[sl]
            whole = largest_component(whole & placement.allowed(lab, PARENCHYMA))
            painted = placement.paint_layers(lab, [(code, m & whole) for code, m in parts], PARENCHYMA)
            mask = np.logical_or.reduce(painted)
            new_id = len(records) + 1
            instances[sl][mask] = new_id
            rec = placement.make_record(
                head,
                sl,
                mask,
                new_id,
                "ccm",
                TYPES[kind - 1],
                zabramski=kind,
                location=where,
                diameter_mm=d,
                familial=familial,
            )
            records.append(rec)
            break
    return LesionSet(task="ccm", instances=instances, records=records)
