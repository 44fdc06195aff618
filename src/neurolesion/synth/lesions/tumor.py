"""Radiosurgery tumours: brain metastases, meningioma and vestibular schwannoma, with mass effect.

* Metastases (1-30 mm, 1-20 per case) sit mostly at the grey-white junction (also cerebellum and deep grey
  matter); small ones are solid (`TUMOR_ENHANCING`), larger ones often ring-enhancing with a necrotic core
  (`TUMOR_NECROSIS`). Vasogenic oedema (`OEDEMA`) spreads in the surrounding white matter only and is not
  part of the tumour label.
* Meningioma: extra-axial, dural-based, homogeneously enhancing (`MENINGIOMA`), flat against the bone,
  with a dural tail (`DURAL_TAIL`, not part of the label), pushing the brain away.
* Vestibular schwannoma (`SCHWANNOMA`): an intracanalicular part filling the internal auditory canal
  (carved into the petrous bone) and, above the smallest grade, a cisternal part in the cerebellopontine
  angle compressing brainstem and cerebellum.

Large tumours first push tissue (`placement.push_radially`: labels, regions, lobes and sides together; no
lesion already painted moves), then are painted. The instance map holds the tumour codes only.

Example:
    >>> rng = np.random.default_rng(0)
    >>> lesions = insert(head, rng, kinds=("metastasis",), met_count=3)  # doctest: +SKIP
    >>> [r.type for r in lesions.records]  # doctest: +SKIP
    ['metastasis', 'metastasis', 'metastasis']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from neurolesion.anatomy.labels import DEEP_GM, PARENCHYMA, Region, Side, Tissue
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import placement
from neurolesion.synth.lesions.base import LesionSet
from neurolesion.synth.lesions.shapes import (
    ellipsoid,
    ellipsoid_radius,
    largest_component,
    lobulated_blob,
    rotation_towards,
    shell,
    smooth_field,
    tube,
)
from neurolesion.synth.tissues import LesionTissue

log = logging.getLogger(__name__)

KINDS = ("metastasis", "meningioma", "schwannoma")
OEDEMA_UNDER = frozenset({Tissue.WM, Tissue.CEREBELLAR_WM})
#: Extra-axial tumours grow into CSF and push or replace brain; they never enter the ventricles.
EXTRA_AXIAL_UNDER = (placement.INTRACRANIAL - {Tissue.VENTRICLE, Tissue.CHOROID_PLEXUS}) | {Tissue.DURA}
CANAL_UNDER = EXTRA_AXIAL_UNDER | {Tissue.SKULL}
MET_INSTANCE = (LesionTissue.TUMOR_ENHANCING, LesionTissue.TUMOR_NECROSIS)


@dataclass(frozen=True)
class TumorParams:
    """Parameters of the tumour generator.

    Attributes:
        kinds: tumour kinds to insert (None: one kind drawn from `kind_probs`).
        kind_probs: probabilities of metastasis / meningioma / schwannoma.
        met_count: number of metastases (None: geometric with mean `met_mean_count`, 1..`met_max_count`).
        met_mean_count: mean number of metastases.
        met_max_count: largest number of metastases.
        met_diameter_mm: (min, max) metastasis diameter, drawn log-uniformly.
        met_location_probs: grey-white junction / cerebellum / deep grey matter.
        ring_min_mm: metastases at least this large may be ring-enhancing.
        ring_probability: probability that such a metastasis is ring-enhancing.
        ring_wall_mm: (min, max) thickness of the enhancing wall.
        oedema_extent: (min, max) oedema reach beyond the tumour, as a multiple of its diameter.
        oedema_min_mm: metastases smaller than this get no oedema.
        mass_effect_min_mm: tumours at least this large push the surrounding tissue.
        meningioma_diameter_mm: (min, max) meningioma diameter.
        dural_tail_mm: (min, max) length of the dural tail beyond the tumour.
        schwannoma_diameter_mm: (min, max) diameter of the cisternal part.
        intracanalicular_probability: probability of a purely intracanalicular schwannoma.
        canal_length_mm: (min, max) length of the intracanalicular part.
        canal_radius_mm: (min, max) radius of the internal auditory canal.
        tries: sites tried per tumour.
    """

    kinds: tuple[str, ...] | None = None
    kind_probs: tuple[float, float, float] = (0.6, 0.25, 0.15)
    met_count: int | None = None
    met_mean_count: float = 3.0
    met_max_count: int = 20
    met_diameter_mm: tuple[float, float] = (1.0, 30.0)
    met_location_probs: tuple[float, float, float] = (0.8, 0.15, 0.05)
    ring_min_mm: float = 8.0
    ring_probability: float = 0.6
    ring_wall_mm: tuple[float, float] = (1.5, 4.0)
    oedema_extent: tuple[float, float] = (0.3, 1.5)
    oedema_min_mm: float = 5.0
    mass_effect_min_mm: float = 10.0
    meningioma_diameter_mm: tuple[float, float] = (8.0, 50.0)
    dural_tail_mm: tuple[float, float] = (5.0, 15.0)
    schwannoma_diameter_mm: tuple[float, float] = (6.0, 35.0)
    intracanalicular_probability: float = 0.2
    canal_length_mm: tuple[float, float] = (6.0, 12.0)
    canal_radius_mm: tuple[float, float] = (1.5, 3.0)
    tries: int = 20

    def __post_init__(self) -> None:
        placement.validate(self)
        if self.kinds is not None and not set(self.kinds) <= set(KINDS):
            raise ValueError(f"TumorParams.kinds={self.kinds!r}; expected a subset of {KINDS}")
        if self.met_count is not None and not 0 <= self.met_count <= self.met_max_count:
            raise ValueError(f"TumorParams.met_count={self.met_count!r}; expected 0..{self.met_max_count}")


def insert(head: Head, rng: np.random.Generator, **params: object) -> LesionSet:
    """Insert tumours into `head` (mass effect, then painting) and return their instances and records.

    Args:
        head: the head (modified in place: labels, and for large tumours regions, lobes and sides).
        rng: random generator.
        **params: overrides of `TumorParams` fields.

    Returns:
        LesionSet(task="tumor"); record type metastasis (subtype solid / ring), meningioma (subtype
        convexity / skull_base / posterior_fossa) or schwannoma (subtype intracanalicular / cisternal);
        extra diameter_mm, oedema_ml, koos, lobe, side.

    Raises:
        ValueError: an unknown parameter or a value out of range.
    """
    p = placement.params_from(TumorParams, params)
    kinds = p.kinds or (str(rng.choice(KINDS, p=np.asarray(p.kind_probs) / sum(p.kind_probs))),)
    out = LesionSet(task="tumor", instances=np.zeros(head.labels.shape, dtype=np.int32), records=[])
    if "schwannoma" in kinds:
        _schwannoma(head, rng, p, out)
    if "meningioma" in kinds:
        _meningioma(head, rng, p, out)
    if "metastasis" in kinds:
        n = placement.draw_count(p.met_count, 0.0, p.met_mean_count, p.met_max_count, rng)
        _metastases(head, rng, p, n, out)
    return out


def _add(
    head: Head, out: LesionSet, sl: tuple, mask: np.ndarray, type_: str, sub: str, **extra: object
) -> None:
    new_id = len(out.records) + 1
    out.instances[sl][mask] = new_id
    out.records.append(placement.make_record(head, sl, mask, new_id, type_, sub, **extra))


def _met_sites(head: Head) -> list[placement.Sites]:
    lab = head.labels
    wm, gm = lab == Tissue.WM, lab == Tissue.CORTICAL_GM
    junction = placement.next_to(wm, gm) | placement.next_to(gm, wm)
    cereb = placement.next_to(lab == Tissue.CEREBELLAR_WM, lab == Tissue.CEREBELLAR_GM)
    return [placement.Sites(m) for m in (junction, cereb, placement.allowed(lab, DEEP_GM))]


def _metastases(head: Head, rng: np.random.Generator, p: TumorParams, n: int, out: LesionSet) -> None:
    sites = _met_sites(head)
    probs = np.asarray(p.met_location_probs, dtype=float) * [s.size > 0 for s in sites]
    sp = head.spacing
    for _ in range(n if probs.sum() > 0 else 0):
        for _ in range(p.tries):
            where = int(rng.choice(3, p=probs / probs.sum()))
            site = sites[where].draw(rng)
            d = float(np.exp(rng.uniform(*np.log(p.met_diameter_mm))))
            r = d / 2
            extent = d * float(rng.uniform(*p.oedema_extent)) if d >= p.oedema_min_mm else 0.0
            sl = placement.crop(site, r * 1.3 + extent + 2 * max(sp), sp, head.labels.shape)
            centre = placement.local(site, sl)
            radii = r * rng.uniform(0.85, 1.15, 3)
            blob = lobulated_blob(head.labels[sl].shape, centre, radii, sp, rng, lobulation=0.15)
            if not placement.fits(head.labels[sl], blob, PARENCHYMA, 0.7):
                continue
            if d >= p.mass_effect_min_mm:
                placement.push_radially(head, site, 0.6 * r, r + max(10.0, r))
            lab = head.labels[sl]
            tumour = largest_component(blob & placement.allowed(lab, PARENCHYMA))
            ring = d >= p.ring_min_mm and rng.random() < p.ring_probability
            core = np.zeros_like(tumour)
            if ring:
                wall = min(float(rng.uniform(*p.ring_wall_mm)), 0.5 * r)
                rho = ellipsoid_radius(lab.shape, centre, radii, sp)
                core = tumour & (rho <= 1.0 - wall / r + 0.15 * smooth_field(lab.shape, r, sp, rng))
                core &= ~placement.next_to(tumour, ~tumour)  # the wall closes the core everywhere
                ring = bool(core.any())
            oedema = np.zeros_like(tumour)
            if extent > 0:
                reach = lobulated_blob(lab.shape, centre, radii + extent, sp, rng, lobulation=0.4)
                grow = reach & placement.allowed(lab, OEDEMA_UNDER) & ~tumour
                oedema = largest_component(grow | tumour) & ~tumour
            layers = [
                (LesionTissue.TUMOR_NECROSIS, core),
                (LesionTissue.TUMOR_ENHANCING, tumour & ~core),
                (LesionTissue.OEDEMA, oedema),
            ]
            necrosis, wall_mask, oed = placement.paint_layers(lab, layers, PARENCHYMA)
            ml = float(oed.sum() * np.prod(sp) / 1000)
            _add(
                head,
                out,
                sl,
                necrosis | wall_mask,
                "metastasis",
                "ring" if ring else "solid",
                diameter_mm=d,
                oedema_ml=ml,
            )
            break


def _inward(head: Head, site: np.ndarray, brain_centre: np.ndarray) -> np.ndarray:
    """Unit vector (grid mm frame) from a point near the skull towards the brain's centre."""
    v = (brain_centre - site) * np.asarray(head.spacing)
    return v / max(float(np.linalg.norm(v)), 1e-6)


def _meningioma(head: Head, rng: np.random.Generator, p: TumorParams, out: LesionSet) -> None:
    lab = head.labels
    cover = Tissue.DURA if (lab == Tissue.DURA).any() else Tissue.SKULL
    surface = placement.Sites(placement.next_to(lab == Tissue.CSF, lab == cover))
    sp = np.asarray(head.spacing)
    brain_centre = np.argwhere(head.brain_mask()).mean(0)
    for _ in range(p.tries):
        if surface.size == 0:
            break
        site = surface.draw(rng)
        d = float(np.exp(rng.uniform(*np.log(p.meningioma_diameter_mm))))
        r = d / 2
        normal = _inward(head, site, brain_centre)
        tail = float(rng.uniform(*p.dural_tail_mm))
        sl = placement.crop(site, r * 1.4 + tail + 2 * sp.max(), sp, lab.shape)
        reach = ellipsoid(head.labels[sl].shape, placement.local(site, sl), (1.6 * r + tail,) * 3, sp)
        if placement.touches_lesion(head.labels[sl], reach, 0):
            continue
        if d >= p.mass_effect_min_mm:
            placement.push_radially(head, site, 0.8 * r, r + max(10.0, r))
        lab_c = head.labels[sl]
        centre = np.asarray(placement.local(site, sl)) + normal * 0.35 * r / sp
        radii = r * np.array([1.0, 1.0, 0.8]) * rng.uniform(0.9, 1.1, 3)
        body = lobulated_blob(lab_c.shape, centre, radii, sp, rng, 0.1, rotation_towards(normal))
        body[tuple(np.asarray(placement.local(site, sl)))] = True
        tumour = largest_component(body & placement.allowed(lab_c, EXTRA_AXIAL_UNDER))
        dura = (
            (lab_c == Tissue.DURA)
            if cover == Tissue.DURA
            else placement.next_to(lab_c == Tissue.CSF, lab_c == Tissue.SKULL)
        )
        tail_mask = shell(tumour, tail, sp) & dura
        (painted, tail_done) = placement.paint_layers(
            lab_c,
            [(LesionTissue.MENINGIOMA, tumour), (LesionTissue.DURAL_TAIL, tail_mask)],
            EXTRA_AXIAL_UNDER,
        )
        _add(
            head, out, sl, painted, "meningioma", "convexity", diameter_mm=d, dural_tail=bool(tail_done.any())
        )
        rec = out.records[-1]
        if rec.region == Region.INFRATENTORIAL.name.lower():
            rec.subtype = "posterior_fossa"
        elif normal @ placement.grid_direction(head, (0, 0, 1)) > 0.6:
            rec.subtype = "skull_base"
        return
    log.warning("no site found for a meningioma after %d tries", p.tries)


def find_porus(
    head: Head, lateral: np.ndarray, reach_mm: float = 20.0
) -> tuple[np.ndarray, np.ndarray | None]:
    """The brainstem's lateral edge facing the internal auditory canal, and the canal's opening.

    Brainstem levels between 25 % and 65 % of its height are tried from the lower pons (40 %) outwards;
    at each, a ray runs from the brainstem's most lateral voxel along `lateral` through the
    cerebellopontine angle; the first level whose ray meets bone (`Tissue.SKULL`, the petrous ridge)
    within `reach_mm` gives the porus.

    Args:
        head: the head.
        lateral: unit direction (grid mm frame) towards the canal.
        reach_mm: how far from the brainstem the bone may be.

    Returns:
        (edge, porus) in voxel coordinates; porus is None when no level meets bone (the edge then lies at
        the pons); without a brainstem, the edge is the volume's centre.
    """
    lab = head.labels
    sp = np.asarray(head.spacing)
    stem = np.argwhere(lab == Tissue.BRAINSTEM)
    if stem.size == 0:
        return np.asarray(lab.shape, dtype=float) / 2, None
    height = (stem * sp) @ placement.grid_direction(head, (0.0, 0.0, 1.0))
    lo, mid, hi = np.percentile(height, [25, 40, 65])
    levels = np.arange(lo, hi, max(sp.max(), 1.0))
    steps = np.arange(1, int(reach_mm / sp.min()) + 1)
    for level in levels[np.argsort(np.abs(levels - mid))]:
        slab = stem[np.abs(height - level) <= sp.max() / 2 + 0.25]
        if slab.size == 0:
            continue
        edge = slab[np.argmax((slab * sp) @ lateral)].astype(float)
        ray = np.rint(edge + steps[:, None] * lateral * sp.min() / sp).astype(int)
        ray = ray[np.all((ray >= 0) & (ray < lab.shape), axis=1)]
        hit = np.flatnonzero(lab[ray[:, 0], ray[:, 1], ray[:, 2]] == Tissue.SKULL)
        if hit.size:
            return edge, ray[hit[0]].astype(float)
    pons = np.argwhere(placement.pons(head, lab == Tissue.BRAINSTEM))
    return pons[np.argmax((pons * sp) @ lateral)].astype(float), None


def _schwannoma(head: Head, rng: np.random.Generator, p: TumorParams, out: LesionSet) -> None:
    lab = head.labels
    if not (lab == Tissue.BRAINSTEM).any():
        log.warning("no brainstem in the head: schwannoma skipped")
        return
    sp = np.asarray(head.spacing)
    side = Side.LEFT if rng.random() < 0.5 else Side.RIGHT
    lateral = placement.grid_direction(head, (-1.0 if side == Side.LEFT else 1.0, 0.2, 0.0))
    edge, found = find_porus(head, lateral)
    length = float(rng.uniform(*p.canal_length_mm))
    canal_r = float(rng.uniform(*p.canal_radius_mm))
    cisternal = found is None or rng.random() >= p.intracanalicular_probability
    d = float(rng.uniform(*p.schwannoma_diameter_mm)) if cisternal else 0.0
    if found is None:
        log.info("no petrous bone lateral to the brainstem: cisternal schwannoma without a canal")
        porus = edge + lateral * (d + sp.min()) / sp
    else:
        porus = found
    ball_c = porus - lateral * (d / 2 - canal_r) / sp
    sl = placement.crop((porus + ball_c) / 2, d / 2 + length + 10 + 2 * sp.max(), sp, lab.shape)
    if cisternal and d >= p.mass_effect_min_mm:
        placement.push_radially(head, ball_c, 0.7 * d / 2, d / 2 + max(10.0, d / 2))
    lab_c = head.labels[sl]
    off = np.array([s.start for s in sl], dtype=float)
    ts = np.linspace(-canal_r, length, int(4 * length / sp.min()) + 8) if found is not None else np.zeros(0)
    canal = tube(lab_c.shape, (porus - off) + ts[:, None] * lateral / sp, canal_r, sp)
    canal &= placement.allowed(lab_c, CANAL_UNDER)
    ball = ellipsoid(lab_c.shape, ball_c - off, (d / 2,) * 3, sp) if cisternal else np.zeros_like(canal)
    ball &= placement.allowed(lab_c, EXTRA_AXIAL_UNDER)
    tumour = largest_component(canal | ball)
    if not tumour.any() or placement.touches_lesion(lab_c, tumour):
        log.warning("schwannoma site empty or touching another lesion: skipped")
        return
    (painted,) = placement.paint_layers(lab_c, [(LesionTissue.SCHWANNOMA, tumour)], CANAL_UNDER)
    koos = 1 if not cisternal else (2 if d < 15 else 3 if d < 25 else 4)
    sub = "cisternal" if cisternal else "intracanalicular"
    _add(head, out, sl, painted, "schwannoma", sub, diameter_mm=max(d, 2 * canal_r), koos=koos)
    rec = out.records[-1]
    rec.region = "infratentorial"
    rec.extra.update(side=side.name.lower(), canal_length_mm=length if found is not None else 0.0)
