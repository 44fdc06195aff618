"""End-to-end: the real `neurolesion serve` (fake pipeline) driven in headless Debian Chromium.

Uploads a synthetic DICOM study through the page, waits for the result, checks the overlays render and the
lesion table fills, deletes one lesion, saves, and exports an RTSTRUCT that dciodvfy accepts and whose
contours hold exactly the lesion kept. Skips when chromium, playwright or the built front end is absent.
Set WEBAPP_SCREENSHOTS=<folder> to keep the screenshots (docs/webapp/ is made this way).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neurolesion.service.app import STATIC_DIR
from tests.helpers.dicom_writer import grid_affine, phantom, write_series
from tests.service.conftest import TOKEN
from tests.service.fake_pipeline import LESIONS

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
ROOT = Path(__file__).resolve().parents[2]
SHAPE = (24, 28, 20)
FLAIR_FIELDS = {"RepetitionTime": 9000.0, "EchoTime": 90.0, "InversionTime": 2500.0}


def _requirements() -> None:
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    if not Path(CHROMIUM).is_file():
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    if not (STATIC_DIR / "index.html").is_file():
        pytest.skip("front end not built (make web)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m neurolesion.cli serve` on a free port with the fake pipeline; yields its base URL."""
    _requirements()
    data = tmp_path_factory.mktemp("serve")
    config = data / "serve.yaml"
    config.write_text(f"data_dir: {data}\npipeline: tests.service.fake_pipeline:segment\n")
    port = _free_port()
    env = os.environ | {"PYTHONPATH": str(ROOT), "NEUROLESION_TOKEN": TOKEN}
    command = [sys.executable, "-m", "neurolesion.cli", "serve", "--config", str(config), "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(100):
            try:
                if httpx.get(f"{url}/api/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _dicom_zip(folder: Path) -> tuple[Path, Path]:
    """A synthetic oblique FLAIR series, written as DICOM and zipped; returns (zip, series folder)."""
    affine = grid_affine("oblique", SHAPE, (1.0, 1.0, 1.5))
    series = folder / "study" / "flair"
    write_series(
        series,
        phantom(affine, SHAPE, marker_ras=(0, 0, 0)),
        affine,
        description="t2_flair_tra",
        fields=FLAIR_FIELDS,
    )
    archive = folder / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(series.rglob("*")):
            zf.write(file, file.relative_to(folder))
    return archive, series


def _draw_filled_square(page: Any, lesion_id: int) -> None:
    """Draw a filled square (about 3 voxels wide) around the middle of the axial view with the pen."""
    page.click("[data-view=axial]")
    page.fill("#pen-value", str(lesion_id))
    page.check("#pen-fill")
    page.click("#pen-draw")
    box = page.locator("#gl").bounding_box()
    x, y, half = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, 30
    page.mouse.move(x - half, y - half)
    page.mouse.down()
    for dx, dy in ((half, -half), (half, half), (-half, half), (-half, -half)):
        page.mouse.move(x + dx, y + dy, steps=8)
    page.mouse.up()
    page.wait_for_timeout(300)


def _rgb(png: bytes) -> np.ndarray:
    import matplotlib.image as mpimg

    return np.asarray(mpimg.imread(io.BytesIO(png), format="png")[..., :3])


def _red_pixels(png: bytes) -> int:
    rgb = _rgb(png)
    return int(np.count_nonzero((rgb[..., 0] > 0.6) & (rgb[..., 1] < 0.3) & (rgb[..., 2] < 0.3)))


def _green_pixels(png: bytes) -> int:
    """Pixels of the brain-mask outline (NiiVue's 'winter' colour map at 1: green)."""
    rgb = _rgb(png)
    return int(np.count_nonzero((rgb[..., 1] > 0.6) & (rgb[..., 0] < 0.3) & (rgb[..., 2] < 0.7)))


def test_upload_review_correct_and_export_rtstruct(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from neurolesion.io.dicom import read_dicom_folder
    from neurolesion.io.rtstruct import rasterise_rtstruct
    from tests.helpers.dciodvfy import dciodvfy_errors

    shots = Path(os.environ.get("WEBAPP_SCREENSHOTS", tmp_path / "shots"))
    shots.mkdir(parents=True, exist_ok=True)
    archive, series_folder = _dicom_zip(tmp_path)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            accept_downloads=True,
            viewport={"width": 1400, "height": 1000},
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on(
            "console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None
        )
        page.goto(f"{server}/#token={TOKEN}")
        assert "token" not in page.url  # the token leaves the address bar at once

        page.set_input_files("#upload-files", str(archive))
        page.fill("#upload-label", "synthetic DICOM")
        page.click("#upload-button")
        page.wait_for_selector("#study-table tr[data-status=done]", timeout=60_000)
        page.click("#study-table tr[data-status=done]")
        page.wait_for_selector("#canvas-box[data-loaded='3']", timeout=30_000)  # FLAIR, wmh, brain mask
        page.wait_for_selector("#lesion-table tbody tr >> nth=1")
        assert page.locator("#lesion-table tbody tr").count() == len(LESIONS)
        page.click("#lesion-table tbody tr >> nth=0")  # jump to lesion 1
        page.wait_for_selector("#location[data-mm]")
        crosshair = json.loads(page.get_attribute("#location", "data-mm") or "[]")
        centroid = [
            float(
                page.locator("#lesion-table tbody tr >> nth=0").get_attribute("data-centroid-" + a) or "nan"
            )
            for a in "xyz"
        ]
        assert np.allclose(crosshair, centroid, atol=1.0), (crosshair, centroid)
        page.wait_for_timeout(500)
        canvas = page.locator("#gl").screenshot()
        page.screenshot(path=str(shots / "viewer.png"))
        assert _red_pixels(canvas) > 20, "lesion overlay not visible"
        hidden = _green_pixels(canvas)  # the brain-mask outline starts hidden
        page.check("#overlay-controls input[data-task='brain mask']")
        page.wait_for_timeout(300)
        page.screenshot(path=str(shots / "brain_mask.png"))
        shown = _green_pixels(page.locator("#gl").screenshot())
        assert shown > 20 + 10 * hidden, (hidden, shown)
        page.uncheck("#overlay-controls input[data-task='brain mask']")

        page.locator("#lesion-table tbody tr >> nth=1").get_by_role("button", name="Delete").click()
        page.wait_for_selector("#edit-status:has-text('deleted')")
        page.locator("#lesion-table tbody tr >> nth=0").get_by_role("button", name="Accept").click()
        _draw_filled_square(page, lesion_id=5)
        page.click("#edit-save")
        page.wait_for_selector("#edit-status:has-text('saved')", timeout=30_000)
        page.screenshot(path=str(shots / "corrected.png"))
        ids = page.locator("#lesion-table tbody tr td:first-child").all_text_contents()
        assert ids == ["1", "5"]  # lesion 2 deleted, lesion 5 drawn
        assert float(page.get_attribute("#review-summary", "data-case-dice") or "nan") < 1.0

        with page.expect_download(timeout=60_000) as download:
            page.click("[data-export=rtstruct]")
        rtstruct = tmp_path / "rtstruct.dcm"
        download.value.save_as(rtstruct)
        with page.expect_download() as log_download:
            page.click("[data-export=review-log]")
        log_text = Path(log_download.value.path()).read_text()
        context.close()
    assert not errors, errors
    assert "deleted" in log_text and "case_dice" in log_text
    assert dciodvfy_errors(rtstruct) == []
    (series,) = read_dicom_folder(series_folder)
    contours = rasterise_rtstruct(rtstruct, series)
    kept = np.zeros(SHAPE, bool)
    kept[LESIONS[1]] = True
    accepted = _accepted_labels(server)
    assert np.array_equal(accepted == 1, kept & (accepted != 5))  # the square may paint over a corner
    assert (accepted == 5).sum() >= 4 and not (accepted == 2).any()
    for lesion_id in (1, 5):  # geometry survives browser, NiiVue, the server and the RTSTRUCT
        roi = int(np.bincount(contours[accepted == lesion_id]).argmax())
        assert roi > 0 and np.array_equal(contours == roi, accepted == lesion_id)


def _accepted_labels(server: str) -> np.ndarray:
    import gzip

    import httpx
    import nibabel as nib

    auth = {"Authorization": f"Bearer {TOKEN}"}
    (job,) = httpx.get(f"{server}/api/jobs", headers=auth).json()
    data = httpx.get(f"{server}/api/jobs/{job['id']}/images/labels-wmh", headers=auth).content
    return np.asarray(nib.Nifti1Image.from_bytes(gzip.decompress(data)).dataobj)
