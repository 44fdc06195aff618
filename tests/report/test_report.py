"""report.html and report.pdf from a small synthetic case (two sequences on different grids)."""

from __future__ import annotations

import builtins
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neurolesion.analysis.regions import CaseAnatomy
from neurolesion.analysis.scores import csvd_scores
from neurolesion.analysis.table import lesion_table
from neurolesion.anatomy.labels import Lobe, Region, Side, Tissue
from neurolesion.report import write_report
from neurolesion.report.figures import lesion_thumbnails, montage, registration_figure
from neurolesion.report.html import intensity_warnings
from neurolesion.volume import Volume

SHAPE = (40, 48, 20)


@pytest.fixture
def case() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    aff = np.diag([-1.2, 1.2, 3.0, 1.0])  # LAS, anisotropic
    aff[:3, 3] = [24.0, -28.0, -30.0]
    x, y, z = np.ogrid[:40, :48, :20]
    head = ((x - 20) / 17) ** 2 + ((y - 24) / 21) ** 2 + ((z - 10) / 9) ** 2 <= 1
    flair = Volume(head * 100.0 + rng.normal(5, 2, SHAPE), aff, name="flair.nii.gz")
    t1_aff = np.diag([1.0, 1.0, 1.5, 1.0])
    t1_aff[:3, 3] = [-24.0, -28.0, -30.0]
    t1 = Volume(rng.normal(50, 5, (48, 58, 40)), t1_aff, name="t1.nii.gz")
    wmh = np.zeros(SHAPE, np.int32)
    wmh[10:15, 20:26, 8:10] = 1
    wmh[25:28, 12:15, 12:13] = 2
    cmb = np.zeros(SHAPE, np.int32)
    cmb[30, 30, 5] = 1
    prob = (wmh > 0) * 0.9
    side = np.where(np.arange(40)[:, None, None] < 20, Side.RIGHT, Side.LEFT)  # x index grows to the left
    anatomy = CaseAnatomy(
        np.where(head, Tissue.WM, 0).astype(np.uint8),
        np.where(head, Region.LOBAR, 0).astype(np.uint8),
        np.where(head, Lobe.FRONTAL, 0).astype(np.uint8),
        np.broadcast_to(np.where(head, side, 0), SHAPE).astype(np.uint8),
        aff,
        {"brain_dice": 0.93, "deformable": False},
        None,
        ("atlas registration looks poor (test)",),
    )
    anatomy = CaseAnatomy(
        anatomy.tissue,
        anatomy.region,
        anatomy.lobe,
        anatomy.side,
        aff,
        anatomy.quality,
        registration_figure(flair, anatomy.lobe),
        anatomy.warnings,
    )
    labels = {"wmh": wmh, "cmb": cmb}
    rows = lesion_table(wmh, aff, "wmh", prob=prob, anatomy=anatomy)
    rows += lesion_table(cmb, aff, "cmb", anatomy=anatomy)
    summary = {
        "neurolesion": "test",
        "input": {"path": "case<1>", "kind": "nifti", "reference": "flair"},
        "tasks_run": ["brain", "wmh", "cmb"],
        "tasks_skipped": {"tumor": "needs t1c"},
        "tasks_failed": {},
        "scores": csvd_scores(labels, aff, anatomy),
        "brain_volume_ml": 12.3,
        "warnings": ["flair: bias field is strong"],
        "timings_s": {"analysis": 1.0},
    }
    return {
        "summary": summary,
        "rows": rows,
        "images": {"flair": flair, "t1": t1},
        "labels": labels,
        "brain": head,
        "anatomy": anatomy,
    }


def test_report_html_is_self_contained(tmp_path: Path, case: dict[str, Any]) -> None:
    path = write_report(
        tmp_path,
        case["summary"],
        case["rows"],
        case["images"],
        case["labels"],
        brain=case["brain"],
        anatomy=case["anatomy"],
    )
    assert path == tmp_path / "report.html"
    page = path.read_text()
    sources = re.findall(r"src='([^']*)'", page)
    assert len(sources) >= 3 + 3  # montages (brain, wmh, cmb), registration check, thumbnails
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page
    assert "case&lt;1&gt;" in page  # escaped
    for text in (
        "bias field is strong",
        "tumor not run: needs t1c",
        "looks poor",
        "Total CSVD score",
        "Fazekas",
    ):
        assert text in page
    assert page.count("alt='lesion ") == len(case["rows"]) == 3
    assert (tmp_path / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert "PDF: written" in page


def test_pdf_is_skipped_without_its_library(
    tmp_path: Path, case: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_pdf(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib.backends"):
            raise ImportError("no module named matplotlib.backends")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pdf)
    page = write_report(tmp_path, case["summary"], case["rows"], case["images"], case["labels"]).read_text()
    assert "PDF: skipped: matplotlib is not installed" in page
    assert not (tmp_path / "report.pdf").exists()


def test_labels_off_the_reference_grid_are_refused(tmp_path: Path, case: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="reference grid"):
        write_report(tmp_path, case["summary"], [], case["images"], {"wmh": np.zeros((3, 3, 3))}, pdf=False)


def test_figures_radiological_orientation() -> None:
    # a bright voxel on the patient's left must appear on the viewer's right
    data = np.full((10, 10, 4), 0.1)  # non-zero everywhere: the montage keeps the whole field
    data[1, 5, 2] = 1.0  # x index 1 on an RAS grid: left side
    vol = Volume(data, np.eye(4))
    lab = np.zeros((10, 10, 4), np.int32)
    lab[1, 5, 2] = 1
    tile = montage(vol, lab, (1.0, 0.0, 0.0), columns=1, count=1)
    rows, cols = np.nonzero(tile[..., 0] > 0.9)
    assert cols.mean() > 5 and abs(rows.mean() - 4) <= 1  # right half; anterior (y=5) near row 4
    thumbs = lesion_thumbnails(vol, lab, (1.0, 0.0, 0.0), field_mm=8, pixels=9)
    assert set(thumbs) == {1} and thumbs[1].shape == (9, 9, 3)


def test_intensity_warnings() -> None:
    flat = Volume(np.ones((6, 6, 6)), np.eye(4))
    clipped = np.random.default_rng(0).random((20, 20, 20))
    clipped[:5] = clipped.max()
    assert intensity_warnings({"ok": Volume(np.random.default_rng(0).random((8, 8, 8)), np.eye(4))}) == []
    assert "no contrast" in intensity_warnings({"t1": flat})[0]
    assert "clipped" in intensity_warnings({"t2": Volume(clipped, np.eye(4))})[0]


def test_overlays_follow_the_registration_of_the_sequence_shown(tmp_path: Path) -> None:
    """The patient moved 6 mm between FLAIR and T2: the EPVS outline (FLAIR grid) must land on T2's blob."""
    from neurolesion.report.figures import TASK_COLOURS
    from neurolesion.report.html import _task_figures

    shift = np.array([6.0, 0.0, 0.0])
    aff = np.eye(4)
    aff[:3, 3] = [-20.0, -24.0, -10.0]
    box = (slice(14, 22), slice(20, 28), slice(8, 12))
    flair = np.full((40, 48, 20), 10.0)
    flair[box] = 100.0
    labels = np.zeros(flair.shape, np.int32)
    labels[box] = 1
    t2_aff = np.diag([1.25, 1.25, 2.0, 1.0])  # another grid; its world is the FLAIR world moved by `shift`
    t2_aff[:3, 3] = [-20.0, -24.0, -10.0]
    i, j, k = np.meshgrid(*(np.arange(n) for n in (32, 38, 10)), indexing="ij")
    world = np.stack([i, j, k, np.ones_like(i)], axis=-1) @ t2_aff.T
    in_flair = world[..., :3] - shift - aff[:3, 3]  # the FLAIR voxel each T2 voxel shows
    inside = np.all(
        [(in_flair[..., a] >= s.start - 0.5) & (in_flair[..., a] < s.stop - 0.5) for a, s in enumerate(box)],
        axis=0,
    )
    t2 = np.where(inside, 100.0, 10.0)
    images = {"flair": Volume(flair, aff, name="flair"), "t2": Volume(t2, t2_aff, name="t2")}
    moved = np.eye(4)
    moved[:3, 3] = shift  # reference world point -> T2 world point, as `Prepared.registration[...].matrix`

    def offset(registration: dict[str, np.ndarray]) -> float:
        tile = _task_figures(images, "flair", {"epvs": labels}, None, registration)["epvs"]["montage_rgb"]
        outline = np.all(np.isclose(tile, TASK_COLOURS["epvs"]), axis=-1)
        blob = (tile.mean(axis=-1) > 0.6) & ~outline  # bright T2, tinted or not
        assert outline.any() and blob.any()
        return float(np.abs(np.argwhere(outline).mean(0) - np.argwhere(blob).mean(0)).max())

    assert offset({"t2": moved}) < 1.0  # within a voxel (1 mm pixels)
    assert offset({}) > 3.0  # at the scanner's alignment the outline misses the blob


def test_tasks_shown_on_one_sequence_share_its_resampling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lacunes and WMH are both shown on FLAIR: FLAIR is brought onto the T1 grid once, not per task."""
    import neurolesion.preprocess.resample as resample_module
    from neurolesion.report.html import _task_figures

    calls: list[tuple[int, ...]] = []
    real = resample_module.resample

    def counting(vol: Volume, *args: object, **kwargs: object) -> Volume:
        calls.append(vol.shape)
        return real(vol, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(resample_module, "resample", counting)
    t1 = Volume(np.random.default_rng(0).random((12, 12, 12)), np.eye(4), name="t1")
    flair = Volume(np.random.default_rng(1).random((10, 10, 6)), np.diag([1.2, 1.2, 2.0, 1.0]), name="flair")
    labels = np.zeros(t1.shape, np.int32)
    labels[4:7, 4:7, 4:7] = 1
    figs = _task_figures({"t1": t1, "flair": flair}, "t1", {"wmh": labels, "lacune": labels}, None, {})
    assert figs["wmh"]["sequence"] == figs["lacune"]["sequence"] == "flair"
    assert calls == [flair.shape]
