"""Lacunes: 3-15 mm ovoid CSF-filled cavities of deep grey or white matter with a gliotic rim.

The cavity is painted `LesionTissue.LACUNE_FLUID` (CSF-like: dark on FLAIR and T1, bright on T2) and is
the instance; a thin `LesionTissue.LACUNE_RIM` (bright on FLAIR), often incomplete, surrounds it and is
not part of the instance. Cavities are elongated along the perforating arteries (roughly vertical), lie in
the basal ganglia, thalamus, internal capsule, centrum semiovale or pons, and keep away from the
ventricles (`min_ventricle_mm`), so a lacune never opens into a ventricle.

Example:
    >>> rng = np.random.default_rng(0)
    >>> lesions = insert(head, rng, count=3)  # doctest: +SKIP
    >>> [r.type for r in lesions.records]  # doctest: +SKIP
    ['lacune', 'lacune', 'lacune']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from neurolesion.anatomy.labels import DEEP_GM, Tissue
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import placement
from neurolesion.synth.lesions.base import LesionRecord, LesionSet
from neurolesion.synth.lesions.shapes import (
    Vec3,
    ellipsoid_radius,
    largest_component,
    rotation_towards,
    shell,
    smooth_field,
)
from neurolesion.synth.tissues import LesionTissue

LOCATIONS = ("deep_grey", "white_matter", "infratentorial")
UNDER = DEEP_GM | {Tissue.WM, Tissue.BRAINSTEM}


@dataclass(frozen=True)
class LacuneParams:
    """Parameters of the lacune generator.

    Attributes:
        count: number of lacunes (None: 0 with `p_none`, else a geometric count >= 1 up to `max_count`).
        max_count: upper bound on the count.
        p_none: probability of a case without lacunes (when `count` is None).
        mean_count: mean count of a case with lacunes.
        diameter_mm: (min, max) largest diameter of the cavity.
        elongation: (min, max) ratio of the long (perforator) axis to the short axes.
        rim_mm: thickness of the gliotic rim.
        rim_probability: probability that a lacune has a rim.
        rim_coverage: (min, max) fraction of the cavity surface the rim covers.
        location_probs: probabilities of deep grey / white matter / infratentorial sites.
        min_inside: fraction of cavity plus rim that must fall on allowed tissue.
        min_ventricle_mm: least distance between the cavity and a ventricle.
        tries: sites tried per lacune.
    """

    count: int | None = None
    max_count: int = 15
    p_none: float = 0.5
    mean_count: float = 2.0
    diameter_mm: tuple[float, float] = (3.0, 15.0)
    elongation: tuple[float, float] = (1.0, 1.8)
    rim_mm: float = 1.0
    rim_probability: float = 0.85
    rim_coverage: tuple[float, float] = (0.6, 1.0)
    location_probs: tuple[float, float, float] = (0.55, 0.35, 0.1)
    min_inside: float = 0.9
    min_ventricle_mm: float = 2.0
    tries: int = 30

    def __post_init__(self) -> None:
        placement.validate(self)
        if self.count is not None and not 0 <= self.count <= self.max_count:
            raise ValueError(f"LacuneParams.count={self.count!r}; expected 0..{self.max_count} or None")


def site_masks(head: Head) -> dict[str, np.ndarray]:
    """Candidate centres: deep grey nuclei, white matter away from the cortex, and the brainstem."""
    lab = head.labels
    wm = lab == Tissue.WM
    deep_wm = wm & ~placement.next_to(wm, lab == Tissue.CORTICAL_GM)
    return {
        "deep_grey": placement.allowed(lab, DEEP_GM),
        "white_matter": deep_wm,
        "infratentorial": lab == Tissue.BRAINSTEM,
    }


def cavity_and_rim(
    shape: tuple[int, ...],
    centre: tuple[float, float, float],
    diameter_mm: float,
    up: np.ndarray,
    p: LacuneParams,
    spacing: Vec3,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """An ovoid cavity elongated roughly along `up` (grid mm frame), and its (possibly partial) rim, on a crop."""
    long_r = diameter_mm / 2
    short_r = long_r / float(rng.uniform(*p.elongation))
    axis = up + rng.normal(0, 0.3, 3)
    rho = ellipsoid_radius(
        shape, centre, (short_r, short_r * rng.uniform(0.8, 1.0), long_r), spacing, rotation_towards(axis)
    )
    cavity = rho <= 1.0
    cavity[tuple(np.rint(centre).astype(int))] = True
    rim = np.zeros_like(cavity)
    if rng.random() < p.rim_probability:
        rim = shell(cavity, p.rim_mm, spacing)
        field = smooth_field(shape, long_r, spacing, rng)
        rim &= field >= np.quantile(field, 1.0 - rng.uniform(*p.rim_coverage))
    return cavity, rim


def insert(head: Head, rng: np.random.Generator, **params: object) -> LesionSet:
    """Paint lacunes (cavity and rim) into `head.labels` and return the cavities as instances.

    Args:
        head: the head (modified in place).
        rng: random generator.
        **params: overrides of `LacuneParams` fields.

    Returns:
        LesionSet(task="lacune"); records: subtype deep_grey / white_matter / infratentorial, extra
        diameter_mm (largest cavity diameter), rim (bool), lobe, side.

    Raises:
        ValueError: an unknown parameter or a value out of range.
    """
    p = placement.params_from(LacuneParams, params)
    n = placement.draw_count(p.count, p.p_none, p.mean_count, p.max_count, rng)
    sites = {k: placement.Sites(m) for k, m in site_masks(head).items()}
    probs = np.asarray(p.location_probs, dtype=float) * [sites[k].size > 0 for k in LOCATIONS]
    spacing = head.spacing
    up = placement.grid_direction(head, (0.0, 0.0, 1.0))
    grow = max(1, int(np.ceil(p.min_ventricle_mm / min(spacing))))
    instances = np.zeros(head.labels.shape, dtype=np.int32)
    records: list[LesionRecord] = []
    for _ in range(n if probs.sum() > 0 else 0):
        for _ in range(p.tries):
            where = LOCATIONS[int(rng.choice(3, p=probs / probs.sum()))]
            site = sites[where].draw(rng)
            d = float(rng.uniform(*p.diameter_mm))
            sl = placement.crop(
                site, d / 2 + p.rim_mm + p.min_ventricle_mm + max(spacing), spacing, head.labels.shape
            )
            lab = head.labels[sl]
            cavity, rim = cavity_and_rim(lab.shape, placement.local(site, sl), d, up, p, spacing, rng)
            near = ndimage.binary_dilation(cavity, iterations=grow)
            if (lab[near] == Tissue.VENTRICLE).any() or not placement.fits(
                lab, cavity | rim, UNDER, p.min_inside
            ):
                continue
            cavity = largest_component(cavity & placement.allowed(lab, UNDER))
            layers = [(LesionTissue.LACUNE_FLUID, cavity), (LesionTissue.LACUNE_RIM, rim & ~cavity)]
            core, _ = placement.paint_layers(lab, layers, UNDER)
            new_id = len(records) + 1
            instances[sl][core] = new_id
            records.append(
                placement.make_record(
                    head, sl, core, new_id, "lacune", where, diameter_mm=d, rim=bool(rim.any())
                )
            )
            break
    return LesionSet(task="lacune", instances=instances, records=records)
