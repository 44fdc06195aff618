"""report.html: one self-contained page (images embedded as base64 PNG) a clinician can read, and its PDF.

Sections, top to bottom: the case and acquisition, warnings, per-task totals, scores (CSVD score, Fazekas,
MARS, basal-ganglia EPVS, Z-scores), the atlas registration check, then one section per task with an
axial overlay montage and a row per lesion with its thumbnail.

Example:
    >>> path = write_report("out/", summary, rows, case.images, labels, brain=brain)  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'report.html'
"""

from __future__ import annotations

import datetime
import html
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neurolesion.io.atomic import atomic_path
from neurolesion.registry import TASKS
from neurolesion.report import figures
from neurolesion.volume import Volume

if TYPE_CHECKING:
    from neurolesion.analysis.regions import CaseAnatomy

log = logging.getLogger(__name__)

#: Sequences shown under each task's overlays, in order of preference (else the reference).
DISPLAY_SEQUENCES: dict[str, tuple[str, ...]] = {
    "brain": ("t1", "t2", "flair"),
    "wmh": ("flair", "t2"),
    "cmb": ("swi", "t2star"),
    "lacune": ("flair", "t1", "t2"),
    "epvs": ("t2", "t1"),
    "ccm": ("swi", "t2star", "t2"),
    "tumor": ("t1c", "flair", "t1"),
}
#: At most this many lesion rows (with thumbnails) per task; the rest are in lesions.csv.
MAX_ROWS = 300

_COLUMNS = (
    ("id", "ID"),
    ("type", "Type"),
    ("volume_ml", "Volume (ml)"),
    ("max_diameter_mm", "Max 3D diameter (mm)"),
    ("axial_diameter_mm", "Axial diameter (mm)"),
    ("axial_perpendicular_mm", "Perpendicular (mm)"),
    ("region", "Region"),
    ("lobe", "Lobe / structure"),
    ("side", "Side"),
    ("brainstem", "Brainstem"),
    ("confidence", "Confidence"),
)

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;margin:24px;color:#1b1b1b;max-width:1200px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:28px}
h3{font-size:15px}table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:middle}th{background:#f1f3f5}
.warn{background:#fff4e5;border-left:4px solid #f08c00;padding:8px 12px;margin:10px 0}
.note{color:#555;font-size:12px}.big{font-size:20px;font-weight:600}img{image-rendering:auto}
.thumb{width:96px;height:96px}.montage{max-width:100%}
"""


def write_report(
    output_dir: str | os.PathLike[str],
    summary: Mapping[str, Any],
    lesions: Sequence[Mapping[str, Any]],
    images: Mapping[str, Volume],
    labels: Mapping[str, np.ndarray],
    *,
    brain: np.ndarray | None = None,
    anatomy: CaseAnatomy | None = None,
    registration: Mapping[str, np.ndarray] | None = None,
    pdf: bool = True,
) -> Path:
    """Write report.html (and report.pdf) into `output_dir`.

    Args:
        output_dir: folder to write into (created).
        summary: the content of summary.json (input, tasks, scores, warnings, timings ...).
        lesions: the lesion table rows (`neurolesion.analysis.lesion_table`).
        images: sequence name -> Volume, each on its own native grid.
        labels: task -> label map on the reference grid.
        brain: brain mask on the reference grid (drawn in its own montage).
        anatomy: the case anatomy (its registration check image and warnings are shown).
        registration: sequence -> 4x4 RAS matrix taking a reference world point to that sequence's world
            point (``Prepared.registration[seq].matrix``); a sequence shown under the overlays is resampled
            onto the reference grid through it. Sequences without one are shown at the scanner's alignment.
        pdf: also write report.pdf; when its library is missing the PDF is skipped with the reason logged
            and stated in the page.

    Returns:
        The path of report.html.

    Raises:
        ValueError: no image of the reference sequence, or a label map off the reference grid.
    """
    out = Path(output_dir)
    reference = _reference(summary, images)
    ref = images[reference]
    for task, lab in labels.items():
        if np.shape(lab) != ref.shape:
            raise ValueError(
                f"{task} labels have shape {np.shape(lab)}; expected the reference grid {ref.shape}"
            )
    sections = _task_figures(images, reference, labels, brain, registration or {})
    pdf_status = "not requested"
    if pdf:
        from neurolesion.report.pdf import write_pdf

        pdf_status = write_pdf(out / "report.pdf", summary, lesions, sections, anatomy)
    page = render_html(summary, lesions, images, reference, sections, anatomy, pdf_status)
    path = out / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("report written: %s (PDF: %s)", path, pdf_status)
    return path


def _reference(summary: Mapping[str, Any], images: Mapping[str, Volume]) -> str:
    name = str(summary.get("input", {}).get("reference") or next(iter(images), ""))
    if name not in images:
        raise ValueError(f"reference sequence {name!r} not among the images {sorted(images)}")
    return name


def _display_sequence(task: str, images: Mapping[str, Volume], reference: str) -> str:
    """The sequence a task is shown on: the first of its `DISPLAY_SEQUENCES` present, else the reference."""
    return next((s for s in DISPLAY_SEQUENCES.get(task, ()) if s in images), reference)


def _display_image(
    name: str, images: Mapping[str, Volume], reference: str, registration: Mapping[str, np.ndarray]
) -> Volume:
    """Sequence `name`'s first channel brought onto the reference grid through its registration."""
    from neurolesion.preprocess.resample import Grid, resample

    ref = images[reference]
    vol = images[name]
    vol = vol if vol.channels == 1 else vol.with_array(vol.array[:1])
    transform = registration.get(name)
    if transform is not None and np.allclose(transform, np.eye(4), atol=1e-9):
        transform = None
    if transform is not None or not vol.same_grid(ref):
        vol = resample(vol, Grid.of(ref), order="linear", transform=transform)
    return vol


def _task_figures(
    images: Mapping[str, Volume],
    reference: str,
    labels: Mapping[str, np.ndarray],
    brain: np.ndarray | None,
    registration: Mapping[str, np.ndarray],
) -> dict[str, dict[str, Any]]:
    """Per task: the sequence shown, the montage PNG and lesion id -> thumbnail PNG."""
    shown: dict[str, np.ndarray] = dict(labels)
    if brain is not None:
        shown = {"brain": np.asarray(brain).astype(np.int32), **shown}
    out: dict[str, dict[str, Any]] = {}
    on_reference: dict[str, Volume] = {}  # tasks shown on the same sequence share one resampling
    for task, lab in shown.items():
        name = _display_sequence(task, images, reference)
        if name not in on_reference:
            on_reference[name] = _display_image(name, images, reference, registration)
        vol = on_reference[name]
        colour = figures.TASK_COLOURS.get(task, (1.0, 0.3, 0.3))
        montage = figures.montage(vol, lab, colour, alpha=0.0 if task == "brain" else 0.35)
        thumbs = {} if task == "brain" else figures.lesion_thumbnails(vol, _first_ids(lab, MAX_ROWS), colour)
        out[task] = {
            "sequence": name,
            "montage": figures.to_png(montage),
            "montage_rgb": montage,
            "thumbnails": {i: figures.to_png(t) for i, t in thumbs.items()},
            "thumbnail_rgb": thumbs,
        }
    return out


def _first_ids(labels: np.ndarray, count: int) -> np.ndarray:
    """The label map with only its `count` lowest lesion ids kept."""
    lab = np.asarray(labels)
    ids = np.unique(lab[lab > 0])
    return lab if ids.size <= count else np.where(lab <= ids[count - 1], lab, 0)


def render_html(
    summary: Mapping[str, Any],
    lesions: Sequence[Mapping[str, Any]],
    images: Mapping[str, Volume],
    reference: str,
    sections: Mapping[str, Mapping[str, Any]],
    anatomy: CaseAnatomy | None,
    pdf_status: str,
) -> str:
    """The report page as one HTML string (pure: no file access)."""
    from neurolesion.preprocess.orientation import axcodes

    e = html.escape
    inp = summary.get("input", {})
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>neurolesion report: {e(str(inp.get('path', '')))}</title><style>{_STYLE}</style></head><body>",
        "<h1>Brain lesion report</h1>",
        f"<p class='note'>neurolesion {e(str(summary.get('neurolesion', '')))} &middot; {now} &middot; "
        "research software, not a medical device: check every finding on the images.</p>",
        "<h2>Case and acquisition</h2>",
        _table(
            ["Input", "Kind", "Reference grid", "Brain volume (ml)"],
            [[inp.get("path", ""), inp.get("kind", ""), reference, summary.get("brain_volume_ml", "")]],
        ),
        _table(
            ["Sequence", "File", "Matrix", "Voxel size (mm)", "Orientation"],
            [
                [
                    s + (" (reference)" if s == reference else ""),
                    v.name,
                    " x ".join(str(n) for n in v.shape),
                    " x ".join(f"{x:.2f}" for x in v.spacing),
                    "".join(axcodes(v)),
                ]
                for s, v in images.items()
            ],
        ),
    ]
    warnings = [*summary.get("warnings", []), *(anatomy.warnings if anatomy is not None else ())]
    warnings += [f"{t} not run: {why}" for t, why in summary.get("tasks_skipped", {}).items()]
    warnings += [f"{t} failed: {why}" for t, why in summary.get("tasks_failed", {}).items()]
    warnings += intensity_warnings(images)
    parts.append("<h2>Warnings</h2>")
    parts.append(
        "".join(f"<div class='warn'>{e(str(w))}</div>" for w in dict.fromkeys(warnings))
        if warnings
        else "<p>None.</p>"
    )
    parts.append(_totals_html(lesions, summary))
    parts.append(_scores_html(summary.get("scores") or {}))
    if anatomy is not None and anatomy.figure is not None:
        q = anatomy.quality
        parts.append("<h2>Atlas registration check</h2>")
        parts.append(
            f"<p>Brain overlap (Dice) {q.get('brain_dice', 'n/a')}, deformable stage used: "
            f"{'yes' if q.get('deformable') else 'no'}. Coloured outlines: atlas lobes and deep structures.</p>"
        )
        parts.append(
            f"<img class='montage' alt='registration check' src='{figures.data_uri(figures.to_png(anatomy.figure))}'>"
        )
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for row in lesions:
        by_task.setdefault(str(row["task"]), []).append(row)
    for task, section in sections.items():
        parts.append(_task_html(task, section, by_task.get(task, [])))
    parts.append(f"<h2>About this report</h2><p class='note'>PDF: {e(pdf_status)}. ")
    timings = summary.get("timings_s", {})
    if timings:
        parts.append("Timings (s): " + e(", ".join(f"{k} {v}" for k, v in timings.items())) + ". ")
    models = summary.get("models", {})
    if models:
        parts.append("Models: " + e(", ".join(f"{t}: {m.get('name', m)}" for t, m in models.items())) + ".")
    parts.append(
        " Images are shown in radiological convention (patient's right on the viewer's left). "
        "Diameters: maximum 3D and, in the axial plane, the longest with its perpendicular (RANO-BM). "
        "Coordinates are scanner RAS mm.</p></body></html>"
    )
    return "\n".join(parts)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    """A table cell's text: raw HTML for images, escaped text otherwise."""
    if isinstance(value, _Raw):
        return str(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"
    return html.escape(str(value))


class _Raw(str):
    """Trusted HTML (our own <img> tags) that the table does not escape."""


def _totals_html(lesions: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    from neurolesion.analysis.scores import task_totals

    totals = task_totals(lesions)
    ran = [t for t in summary.get("tasks_run", []) if t != "brain"] or list(totals)
    rows = []
    for task in ran:
        t = totals.get(task, {"count": 0, "volume_ml": 0.0, "largest_diameter_mm": 0.0, "brainstem": 0})
        title = TASKS[task].title if task in TASKS else task
        brainstem = t["brainstem"] if task in ("ccm", "tumor") else ""
        rows.append([title, t["count"], t["volume_ml"], t["largest_diameter_mm"], brainstem])
    if not rows:
        return "<h2>Findings</h2><p>No lesion task was run.</p>"
    return "<h2>Findings</h2>" + _table(
        ["Task", "Lesions", "Total volume (ml)", "Largest diameter (mm)", "Brainstem lesions"], rows
    )


def _scores_html(scores: Mapping[str, Any]) -> str:
    if not scores:
        return ""
    parts = ["<h2>Small-vessel-disease scores</h2>"]
    total = scores.get("csvd_score", {})
    if total:
        points = ", ".join(f"{k} {'n/a' if v is None else v}" for k, v in total.get("points", {}).items())
        suffix = (
            ""
            if total.get("complete")
            else f" (lower bound: not segmented: {', '.join(total.get('missing', []))})"
        )
        parts.append(
            f"<p>Total CSVD score: <span class='big'>{total.get('total')}/4</span>{html.escape(suffix)}"
            f"<br><span class='note'>points: {html.escape(points)}</span></p>"
        )
    rows = [[m, v.get("count"), v.get("volume_ml")] for m, v in scores.get("markers", {}).items()]
    if rows:
        parts.append(_table(["Marker", "Count", "Volume (ml)"], rows))
    faz = scores.get("fazekas")
    if faz:
        parts.append(
            _table(
                ["Fazekas periventricular", "Fazekas deep", "PV extent (mm)", "Largest deep focus (mm)"],
                [[faz["periventricular"], faz["deep"], faz["pv_extent_mm"], faz["deep_max_diameter_mm"]]],
            )
        )
    epvs = scores.get("epvs_basal_ganglia")
    if epvs:
        parts.append(f"<p>Basal-ganglia EPVS: left {epvs['left']}, right {epvs['right']}.</p>")
    mars = scores.get("mars")
    if mars:
        mrows = [
            [region, structure.replace("_", " "), c.get("left", 0), c.get("right", 0), c.get("midline", "")]
            for region, structures in mars["counts"].items()
            for structure, c in structures.items()
            if sum(c.values())
        ]
        parts.append(
            f"<h3>MARS microbleed counts</h3><p>Lobar {mars['lobar']}, deep {mars['deep']}, "
            f"infratentorial {mars['infratentorial']}, total {mars['total']}"
            f" ({mars['unlocated']} outside the atlas).</p>"
        )
        if mrows:
            parts.append(_table(["Region", "Structure", "Left", "Right", "Midline"], mrows))
    if scores.get("z_scores"):
        zrows = [[k, v] for k, v in scores["z_scores"].items()]
        parts.append(_table(["Measure", "Z-score"], zrows))
        parts.append(f"<p>Z-score burden (mean): {scores.get('z_burden')}</p>")
    for note in scores.get("notes", []):
        parts.append(f"<p class='note'>{html.escape(str(note))}</p>")
    return "\n".join(parts)


def _task_html(task: str, section: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    title = "Brain mask" if task == "brain" else (TASKS[task].title if task in TASKS else task)
    parts = [
        f"<h2>{html.escape(title)}</h2>",
        f"<p class='note'>Shown on {html.escape(str(section['sequence']))}.</p>",
        f"<img class='montage' alt='{html.escape(task)} overlay' src='{figures.data_uri(section['montage'])}'>",
    ]
    if task == "brain":
        return "\n".join(parts)
    if not rows:
        parts.append("<p>No lesion found.</p>")
        return "\n".join(parts)
    thumbs = section["thumbnails"]
    table_rows = []
    for row in rows[:MAX_ROWS]:
        png = thumbs.get(int(row["id"]))
        img = (
            _Raw(f"<img class='thumb' alt='lesion {row['id']}' src='{figures.data_uri(png)}'>") if png else ""
        )
        kind = row["type"] + (f" ({row['subtype']})" if row.get("subtype") else "")
        values = [kind if key == "type" else row.get(key) for key, _ in _COLUMNS]
        table_rows.append([img, *values])
    parts.append(_table(["Image", *(label for _, label in _COLUMNS)], table_rows))
    if len(rows) > MAX_ROWS:
        parts.append(f"<p class='note'>{len(rows) - MAX_ROWS} more lesions in lesions.csv.</p>")
    return "\n".join(parts)


def intensity_warnings(images: Mapping[str, Volume]) -> list[str]:
    """Plain checks for unusual intensities: a flat image, clipping at the maximum, or non-finite values.

    Example:
        >>> intensity_warnings({"t1": Volume(np.ones((8, 8, 8)), np.eye(4))})
        ['t1: unusual intensity: almost no contrast (1st and 99th percentiles equal)']
    """
    out = []
    for name, vol in images.items():
        data = vol.array[0]
        finite = np.isfinite(data)
        if not finite.all():
            out.append(f"{name}: unusual intensity: {int((~finite).sum())} non-finite voxels")
            data = np.where(finite, data, 0)
        lo, hi = np.percentile(data, [1, 99])
        if hi <= lo:
            out.append(f"{name}: unusual intensity: almost no contrast (1st and 99th percentiles equal)")
            continue
        saturated = float(np.mean(data >= data.max()))
        if saturated > 0.005:
            out.append(f"{name}: unusual intensity: {saturated:.1%} of voxels at the maximum (clipped?)")
    return out
