"""CMB mimics: dark spots on T2*/SWI that are not lesions (painted, but never in a task's instance map).

* flow voids: tubular vessels in the sulci (cortical arteries and veins) and deep medullary veins in the
  white matter, painted as `LesionTissue.FLOW_VOID`; a fraction of the sulcal ones (``enhancing_fraction``)
  are slow-flow veins painted as `Tissue.VESSEL` instead, dark on T2* but bright on post-contrast T1, as
  cortical veins are on a real one (what a tumour model must learn not to contour);
* calcifications: small foci in the globus pallidus (both sides) and in the glomus of the choroid plexus,
  painted as `LesionTissue.CALCIFICATION`;
* air-tissue interfaces: extra pneumatisation of the skull base (sphenoid, ethmoid, mastoid air cells grown
  into the bone next to existing air), painted as anatomy `Tissue.SINUS_AIR`, so that the renderer's
  susceptibility artefact near the skull base varies between heads.

The returned set has task "mimic" (not a registry task): its instances let an evaluation count false
positives on mimics, but no segmentation truth includes them.

Example:
    >>> rng = np.random.default_rng(0)
    >>> mimics = insert(head, rng)  # doctest: +SKIP
    >>> sorted({r.type for r in mimics.records})  # doctest: +SKIP
    ['air_cells', 'calcification', 'flow_void']
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from neurolesion.anatomy.labels import Side, Tissue
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import placement
from neurolesion.synth.lesions.base import LesionRecord, LesionSet
from neurolesion.synth.lesions.shapes import (
    largest_component,
    lobulated_blob,
    smooth_path,
    tube,
)
from neurolesion.synth.tissues import LesionTissue

SULCAL = frozenset({Tissue.CSF, Tissue.VESSEL})


@dataclass(frozen=True)
class MimicParams:
    """Parameters of the mimic generator.

    Attributes:
        flow_voids: (min, max) number of sulcal vessels.
        flow_void_radius_mm: (min, max) vessel radius.
        flow_void_length_mm: (min, max) vessel length.
        medullary_veins: (min, max) number of deep medullary veins (radius `medullary_radius_mm`).
        medullary_radius_mm: radius of a medullary vein.
        pallidal_probability: probability of bilateral pallidal calcifications.
        plexus_probability: probability of choroid plexus calcification (each side).
        calcification_diameter_mm: (min, max) diameter of a calcification.
        air_probability: probability of extra skull-base pneumatisation.
        air_diameter_mm: (min, max) diameter of the added air cells.
        enhancing_fraction: fraction of the sulcal vessels painted as enhancing veins (`Tissue.VESSEL`).
    """

    flow_voids: tuple[int, int] = (2, 8)
    flow_void_radius_mm: tuple[float, float] = (0.6, 1.5)
    flow_void_length_mm: tuple[float, float] = (10.0, 40.0)
    medullary_veins: tuple[int, int] = (0, 4)
    medullary_radius_mm: float = 0.5
    pallidal_probability: float = 0.3
    plexus_probability: float = 0.6
    calcification_diameter_mm: tuple[float, float] = (1.5, 5.0)
    air_probability: float = 0.5
    air_diameter_mm: tuple[float, float] = (6.0, 16.0)
    enhancing_fraction: float = 0.0

    def __post_init__(self) -> None:
        placement.validate(self)
        if not 0.0 <= self.enhancing_fraction <= 1.0:
            raise ValueError(f"MimicParams.enhancing_fraction={self.enhancing_fraction}; expected 0..1")


def insert(head: Head, rng: np.random.Generator, **params: object) -> LesionSet:
    """Paint CMB mimics into `head.labels`.

    Args:
        head: the head (modified in place).
        rng: random generator.
        **params: overrides of `MimicParams` fields.

    Returns:
        LesionSet(task="mimic"); record types flow_void (subtype sulcal / medullary), calcification
        (subtype pallidum / choroid_plexus) and air_cells.

    Raises:
        ValueError: an unknown parameter or a value out of range.
    """
    p = placement.params_from(MimicParams, params)
    out = _Painter(head)
    lab = head.labels
    sulci = placement.next_to(lab == Tissue.CSF, lab == Tissue.CORTICAL_GM)
    for site in placement.sample_sites(rng, sulci, int(rng.integers(p.flow_voids[0], p.flow_voids[1] + 1))):
        length = float(rng.uniform(*p.flow_void_length_mm))
        radius = float(rng.uniform(*p.flow_void_radius_mm))
        vein = p.enhancing_fraction > 0 and rng.random() < p.enhancing_fraction  # no draw at 0: seeds keep
        code, sub = (Tissue.VESSEL, "sulcal_vein") if vein else (LesionTissue.FLOW_VOID, "sulcal")
        out.vessel(site, rng.standard_normal(3), length, radius, SULCAL, sub, rng, code)
    wm = lab == Tissue.WM
    deep_wm = placement.next_to(wm, lab == Tissue.VENTRICLE)
    n_veins = int(rng.integers(p.medullary_veins[0], p.medullary_veins[1] + 1))
    centre = np.argwhere(lab == Tissue.VENTRICLE).mean(0) if (lab == Tissue.VENTRICLE).any() else None
    for site in placement.sample_sites(rng, deep_wm, n_veins if centre is not None else 0):
        radial = (site - centre) * np.asarray(head.spacing)
        out.vessel(
            site, radial, float(rng.uniform(15, 30)), p.medullary_radius_mm, {Tissue.WM}, "medullary", rng
        )
    if rng.random() < p.pallidal_probability:
        for side in (Side.LEFT, Side.RIGHT):
            out.focus((lab == Tissue.PALLIDUM) & (head.sides == side), p, "pallidum", rng)
    for side in (Side.LEFT, Side.RIGHT):
        if rng.random() < p.plexus_probability:
            out.focus((lab == Tissue.CHOROID_PLEXUS) & (head.sides == side), p, "choroid_plexus", rng)
    if rng.random() < p.air_probability:
        out.air(placement.next_to(lab == Tissue.SKULL, lab == Tissue.SINUS_AIR), p, rng)
    return LesionSet(task="mimic", instances=out.instances, records=out.records)


class _Painter:
    """Holds the head and the growing instance map and records while mimics are painted."""

    def __init__(self, head: Head) -> None:
        self.head = head
        self.instances = np.zeros(head.labels.shape, dtype=np.int32)
        self.records: list[LesionRecord] = []

    def _paint(
        self, sl: tuple, mask: np.ndarray, code: int, under: Collection[int], type_: str, sub: str
    ) -> None:
        (done,) = placement.paint_layers(self.head.labels[sl], [(code, mask)], under)
        if not done.any():
            return
        new_id = len(self.records) + 1
        self.instances[sl][done] = new_id
        self.records.append(placement.make_record(self.head, sl, done, new_id, type_, sub))

    def vessel(
        self,
        site: np.ndarray,
        direction: np.ndarray,
        length_mm: float,
        radius_mm: float,
        under: Collection[int],
        sub: str,
        rng: np.random.Generator,
        code: int = LesionTissue.FLOW_VOID,
    ) -> None:
        """A tubular vessel (painted `code`) from `site` along `direction`, kept to its connected part on
        `under`."""
        sp = np.asarray(self.head.spacing)
        path = smooth_path(site * sp, direction, length_mm, rng, curvature=0.08) / sp
        sl = placement.path_crop(path, radius_mm, sp, self.head.labels.shape)
        local = path - np.array([s.start for s in sl])
        lab = self.head.labels[sl]
        mask = tube(lab.shape, local, radius_mm, sp) & placement.allowed(lab, under)
        if mask.any() and not placement.touches_lesion(lab, mask):
            self._paint(sl, largest_component(mask), code, under, "flow_void", sub)

    def focus(self, where: np.ndarray, p: MimicParams, sub: str, rng: np.random.Generator) -> None:
        """A small calcification blob centred in `where`, painted on that structure's tissue."""
        for site in placement.sample_sites(rng, where, 1):
            self._blob(site, p.calcification_diameter_mm, LesionTissue.CALCIFICATION, sub, rng)

    def air(self, where: np.ndarray, p: MimicParams, rng: np.random.Generator) -> None:
        """Extra air cells grown into the skull next to existing air."""
        for site in placement.sample_sites(rng, where, 1):
            self._blob(site, p.air_diameter_mm, Tissue.SINUS_AIR, "skull_base", rng, "air_cells")

    def _blob(
        self,
        site: np.ndarray,
        diameter_mm: tuple[float, float],
        code: int,
        sub: str,
        rng: np.random.Generator,
        type_: str = "calcification",
    ) -> None:
        sp = self.head.spacing
        d = float(rng.uniform(*diameter_mm))
        sl = placement.crop(site, d, sp, self.head.labels.shape)
        lab = self.head.labels[sl]
        under = {int(lab[tuple(placement.local(site, sl))])}
        blob = lobulated_blob(lab.shape, placement.local(site, sl), (d / 2,) * 3, sp, rng, 0.3)
        if not placement.touches_lesion(lab, blob, margin_vox=0):
            self._paint(sl, blob, code, under, type_, sub)
