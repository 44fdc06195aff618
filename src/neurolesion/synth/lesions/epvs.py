"""Enlarged perivascular spaces: thin CSF-like channels along the perforating vessels.

Basal ganglia EPVS follow the lenticulostriate arteries, which rise superiorly (and a little laterally) from
the base through the lentiform nucleus; centrum semiovale EPVS (lobar white matter above the ventricles'
centre) follow the medullary arteries, which run radially between the cortex and the ventricles. Each channel is a gently curving tube under 3 mm wide,
painted `LesionTissue.EPVS_FLUID` (CSF-like); short channels look like dots in any section. Counts follow
the usual 0-4 rating per region (0: none, 1: 1-10, 2: 11-20, 3: 21-40, 4: > 40).

On the grid, the painting radius is capped at 0.75 voxel (below sqrt(2/3), the least radius at which a
voxel on a straight path can have all six face neighbours inside), so no channel has an interior voxel and
its cross-section is at most two voxels across; records carry the painted width 2 x radius.

Example:
    >>> rng = np.random.default_rng(0)
    >>> lesions = insert(head, rng, bg_grade=3, cso_grade=1)  # doctest: +SKIP
    >>> {r.subtype for r in lesions.records}  # doctest: +SKIP
    {'basal_ganglia', 'centrum_semiovale'}
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from neurolesion.anatomy.labels import Region, Side, Tissue
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import placement
from neurolesion.synth.lesions.base import LesionRecord, LesionSet
from neurolesion.synth.lesions.shapes import largest_component, smooth_path, tube
from neurolesion.synth.tissues import LesionTissue

BASAL_GANGLIA = frozenset({Tissue.PUTAMEN, Tissue.PALLIDUM, Tissue.CAUDATE})
BG_UNDER = BASAL_GANGLIA | {Tissue.WM}
CSO_UNDER = frozenset({Tissue.WM})


@dataclass(frozen=True)
class EPVSParams:
    """Parameters of the EPVS generator.

    Attributes:
        bg_grade: basal ganglia rating 0-4 (None: drawn from `grade_probs`, shifted by age).
        cso_grade: centrum semiovale rating 0-4 (None: drawn likewise).
        grade_counts: (min, max) channel count for each rating.
        grade_probs: base probabilities of ratings 0-4 for a head of age_factor 0.5.
        width_mm: (min, max) channel width (< 3 mm).
        bg_length_mm: (min, max) length of a basal ganglia channel.
        cso_length_mm: (min, max) length of a centrum semiovale channel.
        dot_fraction: fraction of channels short enough to look like dots.
        curvature: direction change of the vessel path per mm (radians, roughly).
        tries: sites tried per channel.
    """

    bg_grade: int | None = None
    cso_grade: int | None = None
    grade_counts: tuple[tuple[int, int], ...] = ((0, 0), (1, 10), (11, 20), (21, 40), (41, 60))
    grade_probs: tuple[float, ...] = (0.1, 0.35, 0.3, 0.15, 0.1)
    width_mm: tuple[float, float] = (0.7, 2.5)
    bg_length_mm: tuple[float, float] = (3.0, 15.0)
    cso_length_mm: tuple[float, float] = (5.0, 25.0)
    dot_fraction: float = 0.3
    curvature: float = 0.06
    tries: int = 10

    def __post_init__(self) -> None:
        placement.validate(self)
        for name in ("bg_grade", "cso_grade"):
            value = getattr(self, name)
            if value is not None and value not in range(len(self.grade_counts)):
                raise ValueError(f"EPVSParams.{name}={value!r}; expected a rating 0-4 or None")
        if not 0 < self.width_mm[0] <= self.width_mm[1] < 3.0:
            raise ValueError(f"EPVSParams.width_mm={self.width_mm!r}; expected 0 < min <= max < 3 mm")


def draw_grade(given: int | None, p: EPVSParams, age_factor: float, rng: np.random.Generator) -> int:
    """A 0-4 rating: `given`, or drawn with older heads rated higher."""
    if given is not None:
        return given
    w = np.asarray(p.grade_probs) * np.exp(1.5 * (age_factor - 0.5) * np.arange(len(p.grade_probs)))
    return int(rng.choice(len(w), p=w / w.sum()))


def above(head: Head, mask: np.ndarray, point: np.ndarray) -> np.ndarray:
    """The voxels of `mask` superior to `point` (voxel coordinates) in the head's frame."""
    idx = np.argwhere(mask)
    up = placement.grid_direction(head, (0.0, 0.0, 1.0))
    keep = idx[((idx - point) * np.asarray(head.spacing)) @ up > 0]
    out = np.zeros_like(mask)
    out[keep[:, 0], keep[:, 1], keep[:, 2]] = True
    return out


def insert(head: Head, rng: np.random.Generator, **params: object) -> LesionSet:
    """Paint EPVS channels into `head.labels` and return one instance per channel.

    Args:
        head: the head (modified in place).
        rng: random generator.
        **params: overrides of `EPVSParams` fields.

    Returns:
        LesionSet(task="epvs"); records: subtype basal_ganglia / centrum_semiovale, extra width_mm,
        length_mm, bg_grade, cso_grade, lobe, side.

    Raises:
        ValueError: an unknown parameter or a value out of range.
    """
    p = placement.params_from(EPVSParams, params)
    bg_grade = draw_grade(p.bg_grade, p, head.age_factor, rng)
    cso_grade = draw_grade(p.cso_grade, p, head.age_factor, rng)
    lab = head.labels
    up = placement.grid_direction(head, (0.0, 0.0, 1.0))
    lateral = {Side.LEFT: placement.grid_direction(head, (-1.0, 0.0, 0.0))}
    lateral[Side.RIGHT] = -lateral[Side.LEFT]
    bg = placement.Sites(placement.allowed(lab, BASAL_GANGLIA))
    vent = np.argwhere(lab == Tissue.VENTRICLE)
    vent_centre = vent.mean(0) if vent.size else np.asarray(lab.shape) / 2
    cso = placement.Sites(above(head, (lab == Tissue.WM) & (head.regions == Region.LOBAR), vent_centre))
    painter = _Channels(head, p, {"bg_grade": bg_grade, "cso_grade": cso_grade})
    for _ in range(int(rng.integers(*p.grade_counts[bg_grade], endpoint=True))):
        for _ in range(p.tries):
            if bg.size == 0:
                break
            site = bg.draw(rng)
            side = Side(int(head.sides[tuple(site)]))
            tilt = lateral.get(side, np.zeros(3)) * rng.uniform(0.0, 0.4) + rng.normal(0, 0.15, 3)
            if painter.channel(site, up + tilt, p.bg_length_mm, BG_UNDER, "basal_ganglia", rng):
                break
    for _ in range(int(rng.integers(*p.grade_counts[cso_grade], endpoint=True))):
        for _ in range(p.tries):
            if cso.size == 0:
                break
            site = cso.draw(rng)
            radial = (site - vent_centre) * np.asarray(head.spacing)
            if painter.channel(site, radial, p.cso_length_mm, CSO_UNDER, "centrum_semiovale", rng):
                break
    return LesionSet(task="epvs", instances=painter.instances, records=painter.records)


class _Channels:
    """Holds the head, the instance map and the records while channels are painted."""

    def __init__(self, head: Head, p: EPVSParams, extra: dict[str, int]) -> None:
        self.head, self.p, self.extra = head, p, extra
        self.instances = np.zeros(head.labels.shape, dtype=np.int32)
        self.records: list[LesionRecord] = []

    def channel(
        self,
        site: np.ndarray,
        direction: np.ndarray,
        length_mm: tuple[float, float],
        under: Collection[int],
        sub: str,
        rng: np.random.Generator,
    ) -> bool:
        """Try to paint one channel from `site`; False when it would touch another lesion or is empty."""
        p, sp = self.p, np.asarray(self.head.spacing)
        width = float(rng.uniform(*p.width_mm))
        length = float(rng.uniform(*length_mm)) if rng.random() > p.dot_fraction else 2 * width
        path = smooth_path(site * sp, direction, length, rng, p.curvature) / sp
        path -= (path[-1] - path[0]) / 2 * rng.uniform(0, 1)
        radius = min(width / 2, 0.75 * float(sp.min()))
        sl = placement.path_crop(path, radius, sp, self.head.labels.shape)
        lab = self.head.labels[sl]
        mask = tube(lab.shape, path - np.array([s.start for s in sl]), radius, sp)
        mask = largest_component(mask & placement.allowed(lab, under))
        if not mask.any() or placement.touches_lesion(lab, mask):
            return False
        (done,) = placement.paint_layers(lab, [(LesionTissue.EPVS_FLUID, mask)], under)
        new_id = len(self.records) + 1
        self.instances[sl][done] = new_id
        rec = placement.make_record(
            self.head, sl, done, new_id, "epvs", sub, width_mm=2 * radius, length_mm=length
        )
        rec.extra.update(self.extra)
        self.records.append(rec)
        return True
