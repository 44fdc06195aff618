"""Cerebral microbleeds: small round hemosiderin foci, lobar, deep or infratentorial.

Each CMB is a ball of its true diameter (2-10 mm) painted as `LesionTissue.CMB`; the renderer makes it
very dark on T2*/SWI and blooms it with TE, so the record carries the true diameter, not the blooming one.
Lobar CMBs sit at the cortico-subcortical junction, deep ones in the basal ganglia, thalamus and internal
capsule, infratentorial ones in the brainstem and cerebellum. The location mix follows a pattern: `lobar`
(cerebral amyloid angiopathy), `deep` (hypertensive arteriopathy) or `mixed`.

Example:
    >>> rng = np.random.default_rng(0)
    >>> lesions = insert(head, rng, count=5, pattern="deep")  # doctest: +SKIP
    >>> len(lesions.records)  # doctest: +SKIP
    5
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurolesion.anatomy.labels import DEEP_GM, PARENCHYMA, Region, Tissue
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import placement
from neurolesion.synth.lesions.base import LesionRecord, LesionSet
from neurolesion.synth.lesions.shapes import ellipsoid
from neurolesion.synth.tissues import LesionTissue

PATTERNS = ("lobar", "deep", "mixed")
LOCATIONS = ("lobar", "deep", "infratentorial")
INFRATENTORIAL = frozenset({Tissue.BRAINSTEM, Tissue.CEREBELLAR_GM, Tissue.CEREBELLAR_WM})


@dataclass(frozen=True)
class CMBParams:
    """Parameters of the CMB generator.

    Attributes:
        count: number of CMBs (None: 0 with `p_none`, else a geometric count >= 1, at most `max_count`).
        max_count: upper bound on the count.
        p_none: probability of a case without CMB (when `count` is None).
        mean_count: mean of the count of a case with CMB.
        diameter_mm: (min, max) true diameter; small ones are more frequent.
        pattern: lobar / deep / mixed (None: drawn from `pattern_probs`).
        pattern_probs: probabilities of the patterns.
        location_probs: for each pattern, the probabilities of lobar / deep / infratentorial sites.
        min_inside: fraction of a CMB that must fall on parenchyma (otherwise another site is tried).
        tries: sites tried per CMB before giving up on it.
    """

    count: int | None = None
    max_count: int = 30
    p_none: float = 0.3
    mean_count: float = 5.0
    diameter_mm: tuple[float, float] = (2.0, 10.0)
    pattern: str | None = None
    pattern_probs: tuple[float, float, float] = (0.35, 0.35, 0.3)
    location_probs: tuple[tuple[float, float, float], ...] = (
        (0.9, 0.05, 0.05),
        (0.2, 0.55, 0.25),
        (0.5, 0.3, 0.2),
    )
    min_inside: float = 0.8
    tries: int = 20

    def __post_init__(self) -> None:
        placement.validate(self)
        if self.count is not None and not 0 <= self.count <= self.max_count:
            raise ValueError(f"CMBParams.count={self.count!r}; expected 0..{self.max_count} or None")
        if self.pattern is not None and self.pattern not in PATTERNS:
            raise ValueError(f"CMBParams.pattern={self.pattern!r}; expected one of {PATTERNS} or None")


def site_masks(head: Head) -> dict[str, np.ndarray]:
    """Where CMB centres may fall, by location class.

    Returns:
        {"lobar": grey-white junction voxels of the lobar region, "deep": deep grey nuclei and deep white
        matter, "infratentorial": brainstem and cerebellum}.
    """
    lab = head.labels
    gm, wm = lab == Tissue.CORTICAL_GM, lab == Tissue.WM
    lobar = (placement.next_to(gm, wm) | placement.next_to(wm, gm)) & (head.regions == Region.LOBAR)
    deep = placement.allowed(lab, DEEP_GM) | (wm & (head.regions == Region.DEEP))
    return {"lobar": lobar, "deep": deep, "infratentorial": placement.allowed(lab, INFRATENTORIAL)}


def insert(head: Head, rng: np.random.Generator, **params: object) -> LesionSet:
    """Paint CMBs into `head.labels` and return their instances and records.

    Args:
        head: the head (modified in place).
        rng: random generator.
        **params: overrides of `CMBParams` fields.

    Returns:
        LesionSet(task="cmb"); records: subtype lobar / deep / infratentorial (the site class), extra
        diameter_mm (true diameter), pattern, lobe, side.

    Raises:
        ValueError: an unknown parameter or a value out of range.
    """
    p = placement.params_from(CMBParams, params)
    pattern = p.pattern or str(rng.choice(PATTERNS, p=np.asarray(p.pattern_probs) / sum(p.pattern_probs)))
    n = placement.draw_count(p.count, p.p_none, p.mean_count, p.max_count, rng)
    sites = {k: placement.Sites(m) for k, m in site_masks(head).items()}
    loc_p = np.asarray(p.location_probs[PATTERNS.index(pattern)], dtype=float)
    spacing = head.spacing
    instances = np.zeros(head.labels.shape, dtype=np.int32)
    records: list[LesionRecord] = []
    for _ in range(n):
        for _ in range(p.tries):
            avail = np.array([sites[k].size > 0 for k in LOCATIONS], dtype=float) * loc_p
            if avail.sum() == 0:
                break
            where = LOCATIONS[int(rng.choice(3, p=avail / avail.sum()))]
            site = sites[where].draw(rng) + rng.uniform(-0.5, 0.5, 3)
            d = float(p.diameter_mm[0] + (p.diameter_mm[1] - p.diameter_mm[0]) * rng.beta(1.2, 4.0))
            sl = placement.crop(site, d / 2 + 2 * max(spacing), spacing, head.labels.shape)
            ball = ellipsoid(head.labels[sl].shape, placement.local(site, sl), (d / 2,) * 3, spacing)
            ball[
                tuple(np.clip(np.rint(placement.local(site, sl)).astype(int), 0, np.array(ball.shape) - 1))
            ] = True
            if not placement.fits(head.labels[sl], ball, PARENCHYMA, p.min_inside):
                continue
            (mask,) = placement.paint_layers(head.labels[sl], [(LesionTissue.CMB, ball)], PARENCHYMA)
            if not mask.any():
                continue
            new_id = len(records) + 1
            instances[sl][mask] = new_id
            records.append(
                placement.make_record(head, sl, mask, new_id, "cmb", where, diameter_mm=d, pattern=pattern)
            )
            break
    return LesionSet(task="cmb", instances=instances, records=records)
