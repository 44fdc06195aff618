"""Which MR sequence a DICOM series is (T1, T1 with contrast, T2, FLAIR, T2*-GRE, SWI or other).

Two independent clues are weighed: the names the operator or vendor gave the series (SeriesDescription,
ProtocolName, SequenceName; read by `naming.sequence_from_text`, with a few DICOM-specific fixes) and the acquisition physics (ScanningSequence, SequenceVariant, TR, TE, TI,
ImageType, ContrastBolusAgent). Names usually decide; physics confirms them (higher confidence), contradicts
them (lower confidence) or decides alone when the names say nothing.

Example:
    >>> detect_sequence({"SeriesDescription": "AX FLAIR", "RepetitionTime": 9000, "InversionTime": 2500})[:2]
    ('flair', 0.95)
    >>> detect_sequence({"SeriesDescription": "t1_mprage_sag", "ContrastBolusAgent": "Gadovist"})[0]
    't1c'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from neurolesion.io.naming import PRE_CONTRAST, sequence_from_text

OTHER = "other"

#: Header keywords detect_sequence reads (pydicom keywords).
HEADER_FIELDS: tuple[str, ...] = (
    "SeriesDescription",
    "ProtocolName",
    "SequenceName",
    "PulseSequenceName",
    "ScanningSequence",
    "SequenceVariant",
    "RepetitionTime",
    "EchoTime",
    "InversionTime",
    "FlipAngle",
    "ContrastBolusAgent",
    "ImageType",
)

# Names of series that are not one of our sequences (checked first: "dwi t2" is a diffusion series).
_NOT_OURS = re.compile(
    r"localizer|locali[sz]er|scout|survey|\bloc\b|3.?plane|\bdwi\b|diff|\badc\b|trace|\bdti\b|\btensor|"
    r"\bperf|\bdsc\b|\bdce\b|\basl\b|pcasl|\bbold\b|fmri|resting|\btof\b|\bmra\b|angio|\bpc\b|\bphase\b|"
    r"\bmip\b|cal(ibration)?\b|\bsense_?ref|coil.?survey|\bb1.?map|\bmap\b|spectro|\bsvs\b|\bcsi\b"
)
_CONTRAST_NAME = re.compile(
    r"\+\s*c\b|\+\s*gd|\bgd\b|gad|\bpost\b|post.?(contrast|gd|c\b)|contrast|\bce\b|\bkm\b|\bmdc\b|\bc\+|"
    r"\+\s*kontrast|dotarem|gadovist|multihance|prohance|clariscan"
)


def _text(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key)
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _number(fields: Mapping[str, Any], key: str) -> float | None:
    value = fields.get(key)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _physics_guess(fields: Mapping[str, Any]) -> tuple[str, float, str] | None:
    """A guess from ScanningSequence/SequenceVariant/ImageType and TR/TE/TI (ms), or None."""
    scanning = _text(fields, "ScanningSequence").upper()
    variant = _text(fields, "SequenceVariant").upper()
    image_type = _text(fields, "ImageType").upper()
    tr, te, ti = (_number(fields, k) for k in ("RepetitionTime", "EchoTime", "InversionTime"))
    timing = ", ".join(f"{k} {v:g} ms" for k, v in (("TR", tr), ("TE", te), ("TI", ti)) if v is not None)
    where = f"{scanning or 'no ScanningSequence'}{'/' + variant if variant else ''}{', ' + timing if timing else ''}"
    if re.search(r"\bSWI\b|\bSWAN\b|\bSWIP\b", image_type):
        return "swi", 0.85, f"ImageType {image_type} marks SWI"
    if "EP" in scanning.split("\\") and "GR" not in scanning:
        return OTHER, 0.5, f"echo-planar spin echo ({where}): diffusion or perfusion"
    if ti is not None and ti >= 1500 and (te is None or te >= 60):
        return "flair", 0.8, f"inversion recovery with long TI ({where})"
    if ti is not None and 300 <= ti <= 1400 and (te is None or te < 15):
        return "t1", 0.75, f"inversion-prepared with short TE ({where})"
    if "GR" in scanning and "MP" in variant and (te is None or te < 15):
        return "t1", 0.7, f"magnetisation-prepared gradient echo ({where})"
    if te is None or tr is None:
        return None
    if "GR" in scanning or ("SE" not in scanning and "IR" not in scanning and scanning):
        if te >= 15:
            return "t2star", 0.65, f"gradient echo with long TE ({where})"
        if tr < 100 and te < 10:
            return "t1", 0.6, f"spoiled gradient echo with short TR and TE ({where})"
        return None
    if tr < 1000 and te < 30:
        return "t1", 0.7, f"spin echo with short TR and TE ({where})"
    if tr >= 2000 and te >= 60:
        return "t2", 0.7, f"spin echo with long TR and TE ({where})"
    return None


def _contrast_given(fields: Mapping[str, Any], names: str) -> tuple[bool, str]:
    agent = _text(fields, "ContrastBolusAgent").strip()
    if agent:
        return True, f"ContrastBolusAgent {agent!r}"
    if _CONTRAST_NAME.search(names) and not PRE_CONTRAST.search(names):
        return True, "the name mentions contrast"
    return False, ""


def detect_sequence(header_fields: Mapping[str, Any]) -> tuple[str, float, str]:
    """Guess the sequence of a series from its header.

    Args:
        header_fields: pydicom keywords to values (a plain dict or a pydicom Dataset), see HEADER_FIELDS;
            missing keys are allowed. TR/TE/TI in ms as DICOM stores them.

    Returns:
        (name, confidence, reason): a registry sequence name ("t1", "t1c", "t2", "flair", "t2star", "swi") or
        "other"; a confidence in [0, 1] (0 when nothing was recognised); a one-line human-readable reason.

    Example:
        >>> detect_sequence({"ScanningSequence": "SE", "RepetitionTime": 5000, "EchoTime": 100})[0]
        't2'
        >>> detect_sequence({})
        ('other', 0.0, 'no name or timing recognised')
    """
    keys = ("SeriesDescription", "ProtocolName", "SequenceName", "PulseSequenceName")
    named = {k: _text(header_fields, k) for k in keys}
    names = " ".join(v for v in named.values() if v).lower().replace("_", " ")
    physics = _physics_guess(header_fields)
    source = next((f"{k} {v!r}" for k, v in named.items() if v), "")

    if _NOT_OURS.search(names) and not re.search(r"\bswi|swan|\bsusc|ven.?bold", names):
        return OTHER, 0.9, f"{source} names a series that is not a structural sequence"
    name_guess = sequence_from_text(names)

    if name_guess is not None:
        confidence, reason = 0.8, f"{source} matches {name_guess}"
        if physics is not None and physics[0] == name_guess.replace("t1c", "t1"):
            confidence, reason = 0.95, f"{reason}; physics agrees: {physics[2]}"
        elif physics is not None and physics[0] != OTHER:
            confidence, reason = 0.6, f"{reason}; physics suggests {physics[0]}: {physics[2]}"
        guess = name_guess
    elif physics is not None:
        guess, confidence, reason = physics
    else:
        return OTHER, 0.0, "no name or timing recognised"

    if guess == "t1":
        contrast, why = _contrast_given(header_fields, names)
        if contrast:
            guess, reason = "t1c", f"{reason}; contrast given: {why}"
    return guess, round(confidence, 3), reason
