"""Anatomical label codes shared by the simulator (synth) and the analysis (regions, MARS).

`Tissue` codes are the anatomy of a head label map (0-31). Lesion tissue codes (32 and up) live in
`neurolesion.synth.tissues`. `Region`, `Lobe` and `Side` code the location of a voxel or a lesion.
"""

from enum import IntEnum


class Tissue(IntEnum):
    """Normal anatomy of a head label map."""

    BACKGROUND = 0  # air outside the head
    CORTICAL_GM = 1
    WM = 2
    CAUDATE = 3
    PUTAMEN = 4
    PALLIDUM = 5
    THALAMUS = 6
    VENTRICLE = 7  # lateral, third and fourth ventricles
    CSF = 8  # extra-cerebral (sulcal and cisternal) CSF
    BRAINSTEM = 9
    CEREBELLAR_GM = 10
    CEREBELLAR_WM = 11
    SKULL = 12
    SCALP = 13  # skin, fat and muscle outside the skull
    HIPPOCAMPUS_AMYGDALA = 14
    CHOROID_PLEXUS = 15
    VESSEL = 16  # large vessels and dural sinuses
    SINUS_AIR = 17  # air in paranasal sinuses and mastoid cells
    EYE = 18
    DURA = 19


#: Tissues that count as brain in a brain mask (SynthStrip convention: parenchyma plus inner CSF).
BRAIN_TISSUES: frozenset[int] = frozenset(
    {
        Tissue.CORTICAL_GM,
        Tissue.WM,
        Tissue.CAUDATE,
        Tissue.PUTAMEN,
        Tissue.PALLIDUM,
        Tissue.THALAMUS,
        Tissue.VENTRICLE,
        Tissue.BRAINSTEM,
        Tissue.CEREBELLAR_GM,
        Tissue.CEREBELLAR_WM,
        Tissue.HIPPOCAMPUS_AMYGDALA,
        Tissue.CHOROID_PLEXUS,
    }
)

#: Brain parenchyma (used for the 2 mm periphery false-positive rule).
PARENCHYMA: frozenset[int] = BRAIN_TISSUES - {Tissue.VENTRICLE, Tissue.CHOROID_PLEXUS}

DEEP_GM: frozenset[int] = frozenset({Tissue.CAUDATE, Tissue.PUTAMEN, Tissue.PALLIDUM, Tissue.THALAMUS})


class Region(IntEnum):
    """Coarse location used by MARS and the lesion table."""

    NONE = 0
    LOBAR = 1
    DEEP = 2  # deep supratentorial
    INFRATENTORIAL = 3


class Lobe(IntEnum):
    """Lobe or deep structure (the `lobe` column of lesions.csv)."""

    NONE = 0
    FRONTAL = 1
    PARIETAL = 2
    TEMPORAL = 3
    OCCIPITAL = 4
    INSULA = 5
    CINGULATE = 6
    BASAL_GANGLIA = 7
    THALAMUS = 8
    INTERNAL_CAPSULE = 9
    EXTERNAL_CAPSULE = 10
    CORPUS_CALLOSUM = 11
    PERIVENTRICULAR_DEEP_WM = 12
    BRAINSTEM = 13
    CEREBELLUM = 14


class Side(IntEnum):
    NONE = 0
    LEFT = 1
    RIGHT = 2
