"""Guess a sequence from free text: a file name, a DICOM SeriesDescription or ProtocolName."""

from __future__ import annotations

import re

# Ordered: the first rule that matches wins (FLAIR before T2, post-contrast T1 before T1).
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("flair", re.compile(r"flair|\bdark[ _-]?fluid|\bt2[ _-]?fl\b|\bir[ _-]?t2\b")),
    ("swi", re.compile(r"\bswi|\bswan\b|susc|\bswip\b|venobold")),
    (
        "t2star",
        re.compile(r"t2[ _-]?(\*|star|s\b|sw\b|starw)|\bgre\b|\bt2[ _-]?ffe\b|hemo|ffe[ _-]?t2|\bmerge\b"),
    ),
    (
        "t1c",
        re.compile(
            r"(t1|mprage|spgr|bravo|tfe|vibe|mp2rage).*(\+c|post|gad|\bgd\b|\bce\b|contrast|kontrast|\bkm\b)"
            r"|(\+c|post|gad|\bgd\b|contrast).*(t1|mprage|spgr|bravo|tfe)|t1[ _-]?(c|ce|gd|post|km)\b|ce[ _-]t1"
        ),
    ),
    ("t1", re.compile(r"\bt1|mprage|mp[ _-]?rage|spgr|bravo|\btfe\b|\bt1w|3d[ _-]?t1|\bmp2rage")),
    ("t2", re.compile(r"\bt2|\btse\b.*t2|\bt2w")),
)


# Vendor names the rules above misread, checked first: GE's "T1 FLAIR" is T1-weighted, Siemens' TIRM is a
# FLAIR, Philips' VEN_BOLD is SWI, and "fl2d"/"fl3d" (Siemens FLASH) or "gradient echo" with a T2 is T2*.
_FIXES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("t1", re.compile(r"\bt1.?flair")),
    ("flair", re.compile(r"\btirm\b")),
    ("swi", re.compile(r"ven.?bold")),
    ("t2star", re.compile(r"\bt2.?fl[23]d|\bfl[23]d.*t2|\bmedic\b|\bm.?ffe\b|gradient.?echo")),
)
# A T1 explicitly named as before contrast is a plain T1 even when the name mentions contrast.
PRE_CONTRAST = re.compile(r"\bpre\b|pre.?(contrast|gd|c\b)|\bnative\b|\bnativ\b|\bsans\b|\bwithout\b")


def sequence_from_text(text: str) -> str | None:
    """The sequence a name or description most likely refers to, or None.

    Args:
        text: e.g. ``"study1_FLAIR.nii.gz"``, ``"T1POST"``, ``"AX T2*"``, ``"sub-01_ce-gd_T1w"``.

    Returns:
        A registry sequence name (t1, t1c, t2, flair, t2star, swi) or None when nothing matches.

    Example:
        >>> [sequence_from_text(s) for s in ("FLAIR.nii.gz", "T1POST", "study1_T2W", "Ax T2* GRE", "T1")]
        ['flair', 't1c', 't2', 't2star', 't1']
        >>> [sequence_from_text(s) for s in ("Sag T1 FLAIR", "t2_tirm_tra", "VEN_BOLD", "T1 pre-contrast")]
        ['t1', 'flair', 'swi', 't1']
    """
    t = re.sub(r"\.nii(\.gz)?$", "", text.lower()).replace("_", " ")
    for name, pattern in (*_FIXES, *_RULES):
        if pattern.search(t):
            return "t1" if name == "t1c" and PRE_CONTRAST.search(t) else name
    return None
