"""Lesion tissue codes painted into a head label map (anatomy codes 0-31 are `anatomy.labels.Tissue`).

A lesion generator writes these codes into `Head.labels`; the contrast simulator turns every code, anatomy
or lesion, into tissue properties (PD, T1, T2, T2*, susceptibility, enhancement) and then into images.
"""

from enum import IntEnum


class LesionTissue(IntEnum):
    WMH = 32  # gliosis / demyelination: long T2, bright FLAIR
    CMB = 33  # hemosiderin focus: very short T2*, blooms with TE
    LACUNE_FLUID = 34  # CSF-like cavity
    LACUNE_RIM = 35  # gliotic rim, bright on FLAIR
    EPVS_FLUID = 36  # CSF-like channel around a perforating vessel
    CCM_CORE = 37  # mixed-age blood products (methaemoglobin: short T1, mixed T2)
    CCM_RIM = 38  # haemosiderin rim: dark on T2 and T2*
    TUMOR_ENHANCING = 39  # enhancing tumour (metastasis wall or solid part)
    TUMOR_NECROSIS = 40  # necrotic core, not enhancing
    OEDEMA = 41  # vasogenic oedema: bright FLAIR/T2, not part of the tumour label
    MENINGIOMA = 42  # homogeneous, strongly enhancing extra-axial mass
    SCHWANNOMA = 43  # enhancing mass at the cerebellopontine angle
    CALCIFICATION = 44  # mimic of CMB (pallidum, choroid plexus): dark T2*, not a lesion
    FLOW_VOID = 45  # mimic of CMB (tubular vessel): dark, not a lesion
    CCM_FLUID = 46  # fluid-fluid levels / cystic blood in CCM cores
    DURAL_TAIL = 47  # enhancing dura beside a meningioma: not part of the tumour label
