"""report.pdf: the report as figure pages, drawn with matplotlib's PdfPages (no system libraries needed).

Pages: a summary page (case, warnings, findings, scores), then per task its overlay montage and its lesion
table (with thumbnails), 12 lesions per page. When matplotlib cannot be imported the PDF is skipped and
the reason returned; the run goes on.

Example:
    >>> status = write_pdf("out/report.pdf", summary, rows, sections, anatomy=None)  # doctest: +SKIP
    >>> status  # doctest: +SKIP
    'written (4 pages)'
"""

from __future__ import annotations

import logging
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neurolesion.io.atomic import atomic_path

if TYPE_CHECKING:
    from neurolesion.analysis.regions import CaseAnatomy

log = logging.getLogger(__name__)

PAGE = (8.27, 11.69)  # A4 portrait, inches
ROWS_PER_PAGE = 12
ROW_HEIGHT = 0.075  # figure fraction per lesion row
THUMB_WIDTH = 0.07 * PAGE[1] / PAGE[0]  # figure fraction: a square thumbnail 0.07 of the page high
_COLUMNS = (
    ("id", "ID"),
    ("type", "Type"),
    ("volume_ml", "ml"),
    ("max_diameter_mm", "3D mm"),
    ("axial_diameter_mm", "Axial mm"),
    ("axial_perpendicular_mm", "Perp. mm"),
    ("lobe", "Location"),
    ("side", "Side"),
    ("confidence", "Conf."),
)


def write_pdf(
    path: str | os.PathLike[str],
    summary: Mapping[str, Any],
    lesions: Sequence[Mapping[str, Any]],
    sections: Mapping[str, Mapping[str, Any]],
    anatomy: CaseAnatomy | None = None,
) -> str:
    """Write the PDF report and say what happened.

    Args:
        path: where report.pdf goes (written atomically).
        summary: the content of summary.json.
        lesions: the lesion table rows.
        sections: per task the figures built by `report.html` (``montage_rgb``, ``thumbnail_rgb``, ``sequence``).
        anatomy: the case anatomy (its registration check image becomes a page).

    Returns:
        ``"written (N pages)"`` or ``"skipped: <reason>"``.
    """
    try:
        from matplotlib.backends.backend_pdf import PdfPages
        from matplotlib.figure import Figure
    except ImportError as err:
        reason = f"skipped: matplotlib is not installed ({err})"
        log.warning("report.pdf %s", reason)
        return reason

    pages = 0
    with atomic_path(path) as tmp, PdfPages(tmp) as pdf:
        fig = Figure(figsize=PAGE)
        fig.text(0.06, 0.96, "Brain lesion report", fontsize=16, weight="bold", va="top")
        fig.text(
            0.06,
            0.93,
            "\n".join(_summary_lines(summary, lesions, anatomy)),
            fontsize=8,
            va="top",
            family="monospace",
        )
        pdf.savefig(fig)
        pages += 1
        if anatomy is not None and anatomy.figure is not None:
            fig = Figure(figsize=PAGE)
            fig.text(
                0.06,
                0.96,
                f"Atlas registration check (brain Dice {anatomy.quality.get('brain_dice')})",
                fontsize=12,
                va="top",
            )
            ax = fig.add_axes((0.05, 0.45, 0.9, 0.48))
            ax.imshow(anatomy.figure)
            ax.set_axis_off()
            pdf.savefig(fig)
            pages += 1
        for task, section in sections.items():
            rows = [r for r in lesions if r["task"] == task]
            pages += _task_pages(pdf, Figure, task, section, rows)
    log.info("report.pdf written: %s (%d pages)", path, pages)
    return f"written ({pages} pages)"


def _summary_lines(
    summary: Mapping[str, Any], lesions: Sequence[Mapping[str, Any]], anatomy: CaseAnatomy | None
) -> list[str]:
    from neurolesion.analysis.scores import task_totals

    inp = summary.get("input", {})
    lines = [
        f"Input: {inp.get('path', '')}",
        f"Reference: {inp.get('reference', '')}   Brain volume: {summary.get('brain_volume_ml', 'n/a')} ml",
        "Sequences: "
        + ", ".join(
            f"{s} {v.get('shape')} {v.get('spacing_mm')} mm" for s, v in inp.get("sequences", {}).items()
        ),
        "",
        "Warnings:",
    ]
    warnings = [*summary.get("warnings", []), *(anatomy.warnings if anatomy is not None else ())]
    warnings += [f"{t} not run: {why}" for t, why in summary.get("tasks_skipped", {}).items()]
    warnings += [f"{t} failed: {why}" for t, why in summary.get("tasks_failed", {}).items()]
    lines += [f"  - {w}" for w in dict.fromkeys(warnings)] or ["  none"]
    lines += ["", "Findings:"]
    for task, t in task_totals(lesions).items():
        stem = f", {t['brainstem']} in the brainstem" if task in ("ccm", "tumor") else ""
        lines.append(
            f"  {task}: {t['count']} lesions, {t['volume_ml']} ml, largest {t['largest_diameter_mm']} mm{stem}"
        )
    scores = summary.get("scores") or {}
    total = scores.get("csvd_score")
    if total:
        lines += ["", f"Total CSVD score: {total['total']}/4  points {total['points']}"]
        if not total.get("complete"):
            lines.append(f"  (lower bound: not segmented: {', '.join(total.get('missing', []))})")
    faz = scores.get("fazekas")
    if faz:
        lines.append(f"Fazekas: periventricular {faz['periventricular']}, deep {faz['deep']}")
    mars = scores.get("mars")
    if mars:
        lines.append(
            f"MARS: lobar {mars['lobar']}, deep {mars['deep']}, infratentorial {mars['infratentorial']}"
        )
    if scores.get("epvs_basal_ganglia"):
        lines.append(f"Basal-ganglia EPVS: {scores['epvs_basal_ganglia']}")
    if scores.get("z_burden") is not None:
        lines.append(f"Z-score burden: {scores['z_burden']}  {scores.get('z_scores')}")
    lines += ["", "Research software, not a medical device: check every finding on the images."]
    return [
        wrapped for line in lines for wrapped in (textwrap.wrap(line, 100, subsequent_indent="    ") or [""])
    ]


def _task_pages(
    pdf: Any, figure: Any, task: str, section: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> int:
    """The montage page and the lesion table pages of one task; returns the number of pages."""
    fig = figure(figsize=PAGE)
    fig.text(
        0.06, 0.96, f"{task}: {len(rows)} lesions (shown on {section['sequence']})", fontsize=12, va="top"
    )
    ax = fig.add_axes((0.05, 0.05, 0.9, 0.88))
    ax.imshow(section["montage_rgb"])
    ax.set_axis_off()
    pdf.savefig(fig)
    pages = 1
    thumbs = section.get("thumbnail_rgb", {})
    for start in range(0, len(rows), ROWS_PER_PAGE):
        fig = figure(figsize=PAGE)
        fig.text(
            0.06,
            0.97,
            f"{task}: lesions {start + 1}-{min(start + ROWS_PER_PAGE, len(rows))}",
            fontsize=11,
            va="top",
        )
        page_rows = rows[start : start + ROWS_PER_PAGE]
        column = _thumbnail_column([thumbs.get(int(r["id"])) for r in page_rows])
        if column is not None:  # one image per page: an axes per thumbnail would cost 40 ms each
            ax = fig.add_axes(
                (0.04, 0.93 - len(page_rows) * ROW_HEIGHT, THUMB_WIDTH, len(page_rows) * ROW_HEIGHT)
            )
            ax.imshow(column, aspect="auto")
            ax.set_axis_off()
        for n, row in enumerate(page_rows):
            text = "  ".join(
                f"{label} {'' if row.get(key) is None else row.get(key)}" for key, label in _COLUMNS
            )
            fig.text(
                0.17,
                0.93 - (n + 0.5) * ROW_HEIGHT,
                textwrap.fill(text, 95),
                fontsize=7,
                va="center",
                family="monospace",
            )
        pdf.savefig(fig)
        pages += 1
    return pages


def _thumbnail_column(thumbs: Sequence[np.ndarray | None], gap_fraction: float = 0.07) -> np.ndarray | None:
    """Thumbnails stacked top to bottom (white gaps; a missing one left blank), or None when none."""
    present = [t for t in thumbs if t is not None]
    if not present:
        return None
    size = present[0].shape[0]
    gap = round(size * gap_fraction / (1 - gap_fraction))
    column = np.ones((len(thumbs) * (size + gap), size, 3))
    for n, t in enumerate(thumbs):
        if t is not None:
            column[n * (size + gap) + gap // 2 : n * (size + gap) + gap // 2 + size] = t[:size, :size]
    return column
