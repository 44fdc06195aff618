"""MR contrasts from tissue properties: T1, T1 with gadolinium, T2, FLAIR, T2*-GRE and SWI.

Each sequence draws its parameters (TR, TE, TI, flip angle) from clinical ranges and evaluates the textbook
signal equation of its family once per tissue code (a look-up table), then paints the table into the label
map and multiplies a shared smooth texture. Susceptibility sequences (t2star, swi) return a complex image:
the phase of every voxel comes from the dipole field of the susceptibility map (FFT convolution), so that
averaging into the acquisition voxel produces blooming that grows with TE and voxel size. A fully random
intensity mode (SynthSeg-style) draws the look-up table at random instead.

Signal families:
    se:     PD (1 - exp(-TR/T1)) exp(-TE/T2)
    gre:    PD sin(a) (1 - E1) / (1 - cos(a) E1) exp(-TE/T2*),  E1 = exp(-TR/T1)
    ir:     PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TE/T2)     (FLAIR: TI nulls CSF)
    mprage: PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TE/T2*)

Example:
    >>> rng = np.random.default_rng(0)
    >>> p = random_sequence("flair", 3.0, rng)
    >>> lut = signal_table(p, property_table(3.0))
    >>> from neurolesion.anatomy.labels import Tissue
    >>> bool(lut[Tissue.CSF] < lut[Tissue.WM] < lut[Tissue.CORTICAL_GM])
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import fft as sfft

from neurolesion.anatomy.labels import Tissue
from neurolesion.synth.properties import N_CODES, R1_RELAXIVITY, property_table
from neurolesion.synth.tissues import LesionTissue

#: Gyromagnetic ratio of 1H, Hz/T.
GAMMA_HZ = 42.577e6

#: Sequences whose images carry susceptibility phase (complex until acquisition).
SUSCEPTIBILITY_SEQUENCES = frozenset({"t2star", "swi"})


@dataclass(frozen=True)
class SequenceParams:
    """The parameters of one simulated sequence.

    Attributes:
        name: registry sequence name.
        family: se, gre, ir or mprage.
        field_t: field strength (T).
        tr, te, ti: ms (ti 0 without inversion).
        flip_deg: excitation flip angle (90 for spin echo).
        contrast_agent: gadolinium given (t1c).
        random_intensity: the fully random look-up table was used instead of physics.
    """

    name: str
    family: str
    field_t: float
    tr: float
    te: float
    ti: float = 0.0
    flip_deg: float = 90.0
    contrast_agent: bool = False
    random_intensity: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def random_sequence(name: str, field_t: float, rng: np.random.Generator) -> SequenceParams:
    """Draw clinical sequence parameters for `name` at `field_t` tesla.

    Raises:
        ValueError: an unknown sequence name.
    """
    u = rng.uniform
    if name in ("t1", "t1c"):
        family = str(rng.choice(["mprage", "gre", "se"], p=[0.5, 0.25, 0.25]))
        if family == "mprage":  # TI between the CSF and GM null points of the field strength
            tr, ti = (u(2000, 2500), u(900, 1100)) if field_t >= 3 else (u(1800, 2200), u(800, 1000))
            p = SequenceParams(name, family, field_t, tr, u(2.0, 4.5), ti=ti, flip_deg=9.0)
        elif family == "gre":
            p = SequenceParams(name, family, field_t, u(8, 25), u(2.5, 5.0), flip_deg=u(15, 30))
        else:
            p = SequenceParams(name, family, field_t, u(400, 700), u(8, 15))
        return SequenceParams(**{**asdict(p), "contrast_agent": name == "t1c"})
    if name == "t2":
        return SequenceParams(name, "se", field_t, u(3000, 6500), u(80, 120))
    if name == "flair":
        tr = u(6000, 11000)
        t1_csf = float(property_table(field_t)["t1"][8])
        ti_null = t1_csf * np.log(2.0 / (1.0 + np.exp(-tr / t1_csf)))
        return SequenceParams(name, "ir", field_t, tr, u(80, 140), ti=ti_null * u(0.96, 1.04))
    if name == "t2star":
        te = u(15, 28) if field_t >= 3 else u(20, 40)
        return SequenceParams(name, "gre", field_t, u(500, 900), te, flip_deg=u(15, 25))
    if name == "swi":
        te = u(18, 30) if field_t >= 3 else u(30, 45)
        return SequenceParams(name, "gre", field_t, u(27, 50), te, flip_deg=u(12, 20))
    raise ValueError(f"unknown sequence {name!r}; expected t1, t1c, t2, flair, t2star or swi")


def jittered_properties(field_t: float, rng: np.random.Generator, spread: float) -> dict[str, np.ndarray]:
    """The property tables with every PD/T1/T2/T2* multiplied by a per-case log-normal factor.

    One draw per case, shared by all its sequences (a patient's tissues are the same on every sequence).
    """
    table = property_table(field_t)
    for key in ("pd", "t1", "t2", "t2s"):
        table[key] = table[key] * np.exp(rng.normal(0.0, spread, N_CODES)).astype(np.float32)
    return table


#: Gliosis-like lesion codes whose conspicuity varies from patient to patient (faint to florid).
GLIOTIC_CODES: tuple[int, ...] = (LesionTissue.WMH, LesionTissue.LACUNE_RIM, LesionTissue.OEDEMA)


def vary_conspicuity(
    props: dict[str, np.ndarray], rng: np.random.Generator, strength: tuple[float, float]
) -> dict[str, np.ndarray]:
    """Move each gliotic lesion's PD/T1/T2/T2* towards white matter by a per-case factor.

    A factor s drawn in `strength` gives ``wm + s * (lesion - wm)``: s = 1 keeps the tabulated lesion,
    s = 0.3 makes a faint lesion. Real lesions span that range (measured against MS patients).

    Example:
        >>> t = property_table(3.0)
        >>> v = vary_conspicuity({k: a.copy() for k, a in t.items()}, np.random.default_rng(0), (0.5, 0.5))
        >>> bool(np.isclose(v["t2"][LesionTissue.WMH], (t["t2"][2] + t["t2"][LesionTissue.WMH]) / 2))
        True
    """
    wm = int(Tissue.WM)
    for code in GLIOTIC_CODES:
        s = np.float32(rng.uniform(*strength))
        for key in ("pd", "t1", "t2", "t2s"):
            props[key][code] = props[key][wm] + s * (props[key][code] - props[key][wm])
    return props


#: Grey-matter codes whose contrast to white matter varies between scanners and sequences.
GREY_CODES: tuple[int, ...] = (
    Tissue.CORTICAL_GM,
    Tissue.CAUDATE,
    Tissue.PUTAMEN,
    Tissue.THALAMUS,
    Tissue.HIPPOCAMPUS_AMYGDALA,
    Tissue.CEREBELLAR_GM,
)


def vary_grey_white_contrast(
    props: dict[str, np.ndarray], rng: np.random.Generator, strength: tuple[float, float]
) -> dict[str, np.ndarray]:
    """Move every grey-matter code's PD/T1/T2/T2* towards white matter by one per-case factor.

    Real scans show less grey/white contrast than the tabulated relaxation times give (partial volume in
    thick cortex, magnetisation transfer in 2D multi-slice sequences, vendor implementations); against the
    MS patients the z-scored NAWM sits nearer the brain mean on T1 and T2 than the textbook tissues put
    it. A factor k drawn in `strength` gives ``wm + k * (grey - wm)``; CSF and lesions are not touched.

    Example:
        >>> t = property_table(3.0)
        >>> v = vary_grey_white_contrast({k: a.copy() for k, a in t.items()}, np.random.default_rng(0), (0.5, 0.5))
        >>> bool(np.isclose(v["t1"][Tissue.CORTICAL_GM], (t["t1"][Tissue.WM] + t["t1"][Tissue.CORTICAL_GM]) / 2))
        True
    """
    wm = int(Tissue.WM)
    k = np.float32(rng.uniform(*strength))
    codes = list(GREY_CODES)
    for key in ("pd", "t1", "t2", "t2s"):
        props[key][codes] = props[key][wm] + k * (props[key][codes] - props[key][wm])
    return props


def set_grey_white_ratio(lut: np.ndarray, ratio: float) -> np.ndarray:
    """Scale every grey-matter code of a look-up table so that cortex / white matter equals `ratio`.

    The property tables with their per-case jitter, weak grey/white factor and white-matter damage can
    leave the simulated FLAIR cortex no brighter than white matter, or darker (a cortex/white-matter
    signal ratio of 0.95-1.05 in half of the cases); textbook FLAIR shows the cortex brighter. This
    imposes a ratio instead (an experiment knob: on the one real patient here the measured grey/white
    contrast depends on how grey matter is delineated; docs/simulator.md). The deep and cerebellar grey
    codes keep their ratio to the cortex; CSF, white matter and lesions are not touched.

    Args:
        lut: (N_CODES,) signal table (from `signal_table`).
        ratio: the cortex / white-matter ratio wanted (> 0).

    Returns:
        A new table.

    Raises:
        ValueError: a ratio that is not positive, or a table whose white matter or cortex is not.

    Example:
        >>> lut = signal_table(random_sequence("flair", 3.0, np.random.default_rng(0)), property_table(3.0))
        >>> out = set_grey_white_ratio(lut, 1.2)
        >>> round(float(out[Tissue.CORTICAL_GM] / out[Tissue.WM]), 3)
        1.2
    """
    wm, gm = float(lut[Tissue.WM]), float(lut[Tissue.CORTICAL_GM])
    if not ratio > 0:
        raise ValueError(f"grey/white ratio {ratio}; expected a positive number")
    if not (wm > 0 and gm > 0):
        raise ValueError(f"look-up table with white matter {wm:g} and cortex {gm:g}; expected both positive")
    out = lut.copy()
    out[list(GREY_CODES)] *= np.float32(ratio * wm / gm)
    return out


#: Largest fraction of the white-to-grey property gap that white-matter damage may close.
GREY_MARGIN = 0.8


def damage_white_matter(
    props: dict[str, np.ndarray], rng: np.random.Generator, strength: tuple[float, float]
) -> dict[str, np.ndarray]:
    """Move normal-appearing white matter's PD/T1/T2/T2* towards the WMH tissue by one per-case factor.

    White matter around lesions is not normal in MS or small vessel disease (diffuse oedema, demyelination,
    "dirty" white matter): its T2 is longer and its T1 longer than healthy tissue. A factor d drawn in
    `strength` gives ``wm + d * (wmh - wm)`` for cerebral and cerebellar white matter, but never more than
    `GREY_MARGIN` of the way to the grey matter, so the tissue order of every sequence holds (FLAIR:
    WM < GM). A property in which the grey matter is not ahead of the white matter in the damage's
    direction (the per-case jitter and a weak grey/white factor can swap them) is left as it is: before
    simulator version 2 it moved without a cap, which made cerebellar white matter as bright as WMH on
    FLAIR in 3 of the 30 test_csvd4 cases (27 ml of false WMH in one). Apply it after
    `vary_grey_white_contrast` and before `vary_conspicuity`, whose lesions are then drawn between the
    damaged white matter and the WMH tissue.

    Example:
        >>> t = property_table(3.0)
        >>> v = damage_white_matter({k: a.copy() for k, a in t.items()}, np.random.default_rng(0), (0.2, 0.2))
        >>> bool(t["t2"][Tissue.WM] < v["t2"][Tissue.WM] < t["t2"][LesionTissue.WMH])
        True
    """
    d = np.float32(rng.uniform(*strength))
    target = int(LesionTissue.WMH)
    pairs = (
        (int(Tissue.WM), int(Tissue.CORTICAL_GM)),
        (int(Tissue.CEREBELLAR_WM), int(Tissue.CEREBELLAR_GM)),
    )
    for code, grey in pairs:
        for key in ("pd", "t1", "t2", "t2s"):
            shift = d * (props[key][target] - props[key][code])
            gap = props[key][grey] - props[key][code]
            if shift * gap <= 0:
                shift = np.float32(0.0)  # grey matter not ahead: damage would carry white matter past it
            elif abs(shift) > GREY_MARGIN * abs(gap):
                shift = GREY_MARGIN * gap  # damaged white matter still looks like white matter
            props[key][code] = props[key][code] + shift
    return props


def signal_table(p: SequenceParams, props: dict[str, np.ndarray]) -> np.ndarray:
    """(N_CODES,) magnitude signal of every tissue code for sequence `p` (before texture and noise)."""
    t1 = props["t1"].astype(np.float64)
    if p.contrast_agent:
        t1 = 1.0 / (1.0 / t1 + R1_RELAXIVITY[p.field_t] * props["gad"] / 1000.0)
    t2, t2s, pd = (
        props["t2"].astype(np.float64),
        props["t2s"].astype(np.float64),
        props["pd"].astype(np.float64),
    )
    if p.family == "se":
        s = pd * (1 - np.exp(-p.tr / t1)) * np.exp(-p.te / t2)
    elif p.family == "gre":
        a = np.deg2rad(p.flip_deg)
        e1 = np.exp(-p.tr / t1)
        s = pd * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1) * np.exp(-p.te / t2s)
    elif p.family in ("ir", "mprage"):
        decay = t2 if p.family == "ir" else t2s
        s = pd * np.abs(1 - 2 * np.exp(-p.ti / t1) + np.exp(-p.tr / t1)) * np.exp(-p.te / decay)
    else:
        raise ValueError(f"unknown sequence family {p.family!r}; expected se, gre, ir or mprage")
    return s.astype(np.float32)


def random_table(rng: np.random.Generator) -> np.ndarray:
    """(N_CODES,) random intensities in [0, 1] (SynthSeg-style domain randomisation); background stays 0."""
    lut = rng.uniform(0.0, 1.0, N_CODES).astype(np.float32)
    lut[0] = 0.0
    return lut


def render(
    labels: np.ndarray,
    lut: np.ndarray,
    texture_std: np.ndarray,
    texture: np.ndarray,
) -> np.ndarray:
    """Paint a look-up table into the label map, modulated by the shared texture field.

    Args:
        labels: (X, Y, Z) uint8 codes.
        lut: (N_CODES,) intensity per code.
        texture_std: (N_CODES,) relative texture amplitude per code.
        texture: (X, Y, Z) zero-mean, unit-variance smooth random field.

    Returns:
        (X, Y, Z) float32 image, non-negative.
    """
    img = lut[labels] * (1.0 + texture_std[labels] * texture)
    return np.maximum(img, 0.0, out=img)


def field_map(chi: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Relative field shift (ppm of B0, B0 along the grid's z axis) of a susceptibility map (ppm).

    Dipole convolution in Fourier space: D(k) = 1/3 - kz^2 / |k|^2 (Salomir 2003, Marques 2005).

    Example:
        >>> chi = np.zeros((16, 16, 16), np.float32); chi[8, 8, 8] = 1.0
        >>> f = field_map(chi, (1.0, 1.0, 1.0))
        >>> bool(f[8, 8, 10] > 0 > f[10, 8, 8])
        True
    """
    shape = chi.shape
    kx = sfft.fftfreq(shape[0], spacing[0]).astype(np.float32)[:, None, None]
    ky = sfft.fftfreq(shape[1], spacing[1]).astype(np.float32)[None, :, None]
    kz = sfft.rfftfreq(shape[2], spacing[2]).astype(np.float32)[None, None, :]
    k2 = kx**2 + ky**2 + kz**2
    k2[0, 0, 0] = 1.0
    kernel = np.float32(1.0 / 3.0) - kz**2 / k2
    kernel[0, 0, 0] = 0.0
    spec = sfft.rfftn(chi.astype(np.float32))
    spec *= kernel
    return sfft.irfftn(spec, s=shape).astype(np.float32)


def dephase(magnitude: np.ndarray, field_ppm: np.ndarray, p: SequenceParams) -> np.ndarray:
    """Complex image: magnitude times exp(-i 2 pi gamma B0 dB TE); averaging it later makes blooming.

    Returns:
        complex64 array.
    """
    phase = (-2.0 * np.pi * GAMMA_HZ * p.field_t * 1e-6 * p.te * 1e-3) * field_ppm
    return (magnitude * np.exp(1j * phase.astype(np.float32))).astype(np.complex64)


def swi_lowpass(complex_img: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Homodyne low-pass (Gaussian, about 8 mm FWHM) of a complex GRE image; smooth, so it may be computed
    on a coarser grid and resized."""
    from scipy import ndimage

    sigma = [8.0 / s / 2.355 for s in spacing]
    re = ndimage.gaussian_filter(complex_img.real.astype(np.float32), sigma)
    im = ndimage.gaussian_filter(complex_img.imag.astype(np.float32), sigma)
    return (re + 1j * im).astype(np.complex64)


def swi_combine(complex_img: np.ndarray, lowpass: np.ndarray, power: int = 4) -> np.ndarray:
    """SWI magnitude: |S| times a negative-phase mask of the high-pass (homodyne) filtered phase.

    Args:
        complex_img: acquired complex GRE image.
        lowpass: its homodyne low-pass (`swi_lowpass`), same shape.
        power: phase mask exponent (4 by convention, Haacke 2004).

    Example:
        >>> z = np.ones((4, 4, 4), np.complex64) * np.exp(-0.5j)
        >>> float(swi_combine(z, np.ones_like(z))[0, 0, 0]) < 1.0
        True
    """
    phase = np.angle(complex_img * np.conj(lowpass))
    mask = np.where(phase < 0, np.clip(1.0 + phase / np.pi, 0.0, 1.0), 1.0)
    return (np.abs(complex_img) * mask**power).astype(np.float32)
