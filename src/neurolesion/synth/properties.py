"""MR tissue properties of every label code (anatomy `Tissue` and `LesionTissue`) at 1.5 T and 3 T.

Values are representative of the literature (ms): Wansapura et al. JMRI 1999 and Stanisz et al. MRM 2005
(T1/T2 of WM, GM, CSF, blood at 1.5 T and 3 T), Peters et al. MRI 2007 and Haacke et al. (T2* and iron in
deep grey matter), Bojorquez et al. MRI 2017 (fat, bone), and the usual lesion descriptions (long T2 of
gliosis and oedema, hemosiderin with very short T2* and paramagnetic susceptibility, methaemoglobin with
short T1 in cavernomas, diamagnetic calcification). Enhancement is the gadolinium concentration (mM) that
shortens T1 on the contrast-enhanced T1 (1/T1 += r1 * C); susceptibility is relative to brain tissue, ppm.

Example:
    >>> from neurolesion.anatomy.labels import Tissue
    >>> p = PROPERTIES[Tissue.WM]
    >>> p.t1[3.0] < PROPERTIES[Tissue.CORTICAL_GM].t1[3.0]
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurolesion.anatomy.labels import Tissue
from neurolesion.synth.tissues import LesionTissue

#: r1 relaxivity of a gadolinium agent, 1/(mM s), by field strength (gadobutrol-like).
R1_RELAXIVITY: dict[float, float] = {1.5: 5.2, 3.0: 5.0}


@dataclass(frozen=True)
class TissueProperties:
    """MR properties of one tissue.

    Attributes:
        pd: proton density relative to CSF (0-1).
        t1: T1 in ms by field strength (1.5, 3.0).
        t2: T2 in ms (little field dependence).
        t2s: T2* in ms by field strength.
        chi: magnetic susceptibility relative to brain tissue, ppm (positive: paramagnetic).
        gad: gadolinium concentration reached after injection, mM (0: no enhancement).
        texture: relative standard deviation of the within-tissue intensity variation.
    """

    pd: float
    t1: dict[float, float]
    t2: float
    t2s: dict[float, float]
    chi: float = 0.0
    gad: float = 0.0
    texture: float = 0.05


def _p(
    pd: float,
    t1_15: float,
    t1_3: float,
    t2: float,
    t2s_15: float,
    t2s_3: float,
    chi: float = 0.0,
    gad: float = 0.0,
    texture: float = 0.07,
) -> TissueProperties:
    return TissueProperties(pd, {1.5: t1_15, 3.0: t1_3}, t2, {1.5: t2s_15, 3.0: t2s_3}, chi, gad, texture)


PROPERTIES: dict[int, TissueProperties] = {
    # normal anatomy
    Tissue.BACKGROUND: _p(0.0, 1000, 1000, 1, 1, 1, texture=0.0),
    Tissue.CORTICAL_GM: _p(0.80, 1100, 1330, 100, 84, 66),
    Tissue.WM: _p(0.69, 650, 830, 75, 68, 53, texture=0.09),
    Tissue.CAUDATE: _p(0.80, 1000, 1250, 85, 65, 50),
    Tissue.PUTAMEN: _p(0.78, 950, 1100, 78, 55, 40),
    Tissue.PALLIDUM: _p(0.72, 750, 900, 62, 38, 25, chi=0.10),
    Tissue.THALAMUS: _p(0.76, 850, 1050, 80, 60, 48),
    Tissue.VENTRICLE: _p(1.00, 3800, 4000, 1800, 1000, 800, texture=0.01),
    Tissue.CSF: _p(1.00, 3800, 4000, 1800, 1000, 800, texture=0.02),
    Tissue.BRAINSTEM: _p(0.72, 750, 950, 80, 62, 48),
    Tissue.CEREBELLAR_GM: _p(0.82, 1050, 1300, 105, 80, 62, texture=0.05),
    Tissue.CEREBELLAR_WM: _p(0.70, 680, 860, 78, 65, 50),
    Tissue.SKULL: _p(0.12, 350, 400, 20, 3, 2, texture=0.30),
    Tissue.SCALP: _p(0.80, 700, 900, 80, 40, 30, gad=0.05, texture=0.25),  # fat and muscle mixed
    Tissue.HIPPOCAMPUS_AMYGDALA: _p(0.82, 1150, 1400, 110, 80, 62),
    Tissue.CHOROID_PLEXUS: _p(0.85, 1300, 1500, 150, 60, 45, gad=0.6, texture=0.10),
    Tissue.VESSEL: _p(0.85, 1450, 1650, 40, 30, 20, chi=0.35, gad=3.0, texture=0.10),
    Tissue.SINUS_AIR: _p(0.0, 1000, 1000, 1, 1, 1, chi=9.4, texture=0.0),
    Tissue.EYE: _p(1.00, 3600, 3900, 1500, 800, 600, texture=0.01),
    Tissue.DURA: _p(0.55, 900, 1000, 60, 30, 25, gad=0.3, texture=0.10),
    # lesions
    LesionTissue.WMH: _p(0.82, 1150, 1450, 160, 95, 75, texture=0.08),
    LesionTissue.CMB: _p(0.60, 800, 950, 25, 6, 4, chi=1.2, texture=0.05),
    LesionTissue.LACUNE_FLUID: _p(0.98, 3500, 3800, 1500, 800, 650, texture=0.02),
    LesionTissue.LACUNE_RIM: _p(0.82, 950, 1200, 150, 90, 70, texture=0.05),
    LesionTissue.EPVS_FLUID: _p(0.98, 3500, 3900, 1600, 800, 650, texture=0.02),
    LesionTissue.CCM_CORE: _p(0.85, 350, 420, 110, 25, 15, chi=0.4, texture=0.25),
    LesionTissue.CCM_RIM: _p(0.55, 700, 850, 20, 5, 3, chi=1.5, texture=0.08),
    LesionTissue.TUMOR_ENHANCING: _p(0.85, 1150, 1400, 110, 70, 55, gad=0.8, texture=0.08),
    LesionTissue.TUMOR_NECROSIS: _p(0.95, 2200, 2600, 350, 150, 120, texture=0.08),
    LesionTissue.OEDEMA: _p(0.88, 1150, 1450, 190, 110, 90, texture=0.05),
    LesionTissue.MENINGIOMA: _p(0.80, 1050, 1300, 95, 70, 55, gad=0.9, texture=0.05),
    LesionTissue.SCHWANNOMA: _p(0.85, 1150, 1400, 130, 80, 62, gad=0.8, texture=0.10),
    LesionTissue.CALCIFICATION: _p(0.30, 700, 800, 30, 10, 7, chi=-1.0, texture=0.05),
    LesionTissue.FLOW_VOID: _p(0.05, 1450, 1650, 20, 8, 5, chi=0.4, texture=0.05),
    LesionTissue.CCM_FLUID: _p(0.95, 1800, 2100, 450, 80, 60, chi=0.2, texture=0.05),
    LesionTissue.DURAL_TAIL: _p(0.60, 900, 1000, 70, 35, 28, gad=0.9, texture=0.10),
}

#: Largest code + 1: size of the look-up tables.
N_CODES = max(PROPERTIES) + 1


def property_table(field_t: float) -> dict[str, np.ndarray]:
    """Look-up tables (one float32 value per code) of every property at field strength `field_t`.

    Args:
        field_t: 1.5 or 3.0.

    Returns:
        {"pd", "t1", "t2", "t2s", "chi", "gad", "texture"} -> (N_CODES,) arrays; codes without properties
        get the background's.

    Raises:
        ValueError: an unsupported field strength.

    Example:
        >>> float(property_table(3.0)["t1"][2])
        830.0
    """
    if field_t not in (1.5, 3.0):
        raise ValueError(f"field strength {field_t} T is not tabulated; expected 1.5 or 3.0")
    keys = ("pd", "t1", "t2", "t2s", "chi", "gad", "texture")
    out = {k: np.zeros(N_CODES, np.float32) for k in keys}
    for code in range(N_CODES):
        p = PROPERTIES.get(code, PROPERTIES[Tissue.BACKGROUND])
        vals = (p.pd, p.t1[field_t], p.t2, p.t2s[field_t], p.chi, p.gad, p.texture)
        for k, v in zip(keys, vals, strict=True):
            out[k][code] = v
    return out
