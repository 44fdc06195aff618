"""simulate_case: shapes and grids, determinism, exact truth, case folder, config validation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from neurolesion.anatomy.labels import Tissue
from neurolesion.errors import InputError
from neurolesion.synth.case import SIMULATOR_VERSION, SynthConfig, insert_lesions, simulate_case
from neurolesion.synth.deform import HeadConfig
from neurolesion.synth.head import Head
from neurolesion.synth.lesions.base import LesionRecord, LesionSet
from neurolesion.synth.tissues import LesionTissue

FAST = SynthConfig(working_downsample=2, spacing=2.0)


def fake_generator(code: int, task: str, half: int = 2) -> Any:
    """A tiny generator: three cubes of `code` in white matter."""

    def insert(head: Head, rng: np.random.Generator, **params: Any) -> LesionSet:
        inst = np.zeros(head.labels.shape, np.int32)
        wm = np.argwhere(head.labels == Tissue.WM)
        records = []
        for i in range(1, 4):
            c = wm[rng.integers(len(wm))]
            sl = tuple(slice(max(int(v) - half, 0), int(v) + half) for v in c)
            head.labels[sl] = code
            inst[sl] = i
            records.append(LesionRecord(i, task, "cube", tuple(float(v) for v in c), 0.0, "lobar"))
        return LesionSet(task, inst, records)

    return insert


FAKES = {
    "wmh": fake_generator(LesionTissue.WMH, "wmh"),
    "cmb": fake_generator(LesionTissue.CMB, "cmb", 1),
    "mimics": fake_generator(LesionTissue.CALCIFICATION, "mimic", 1),
}


def test_common_grid_case_is_consistent_and_deterministic() -> None:
    a = simulate_case(5, ["wmh", "cmb"], ["flair", "t2star"], FAST, generators=FAKES)
    b = simulate_case(5, ["wmh", "cmb"], ["flair", "t2star"], FAST, generators=FAKES)
    assert set(a.images) == {"flair", "t2star"} and set(a.labels) == {"wmh", "cmb"}
    for seq, vol in a.images.items():
        assert vol.shape == a.brain_mask.shape and np.allclose(vol.affine, a.label_affine)
        assert np.array_equal(vol.data, b.images[seq].data)
        assert np.isfinite(vol.data).all() and vol.data.max() > 0
    assert a.info["reference"] == "flair" and a.info["grid"] == "common"
    assert a.info["simulator_version"] == SIMULATOR_VERSION
    assert a.acquisition["flair"]["te"] == b.acquisition["flair"]["te"]


def test_truth_matches_the_tissue_codes() -> None:
    case = simulate_case(6, ["wmh"], ["flair"], replace(FAST, min_label_detectability=0.0), generators=FAKES)
    wmh = case.labels["wmh"] > 0
    assert wmh.any()
    assert (case.anatomy[wmh] == LesionTissue.WMH).all()
    assert not (case.anatomy[~wmh] == LesionTissue.WMH).any()
    assert all(r.volume_ml > 0 and "centre_mm" in r.extra for r in case.records)
    for r in case.records:  # the centre is on the label grid
        assert case.labels["wmh"][tuple(round(v) for v in r.centre_vox)] == r.id


def test_lesions_a_rater_could_not_see_are_left_out_of_the_labels() -> None:
    every = simulate_case(6, ["wmh"], ["flair"], replace(FAST, min_label_detectability=0.0), generators=FAKES)
    none = simulate_case(6, ["wmh"], ["flair"], replace(FAST, min_label_detectability=20.0), generators=FAKES)
    assert every.labels["wmh"].any() and not none.labels["wmh"].any()
    assert np.array_equal(every.images["flair"].data, none.images["flair"].data)  # only the truth changes
    assert all(r.extra.get("visible") is False for r in none.records)
    assert not any("visible" in r.extra for r in every.records)
    # the rule needs the rater's sequence: without FLAIR every WMH stays labelled
    no_flair = simulate_case(
        6, ["wmh"], ["t1"], replace(FAST, min_label_detectability=20.0), generators=FAKES
    )
    assert no_flair.labels["wmh"].any()


def test_later_lesions_take_voxels_from_earlier_truth() -> None:
    from neurolesion.anatomy.template import downsample, load_anatomy
    from neurolesion.synth.deform import random_head

    head = random_head(downsample(load_anatomy(), 2), np.random.default_rng(0), HeadConfig())
    rng = np.random.default_rng(1)

    def cover_wmh(h: Head, r: np.random.Generator, **_: Any) -> LesionSet:
        inst = (h.labels == LesionTissue.WMH).astype(np.int32)
        h.labels[inst > 0] = LesionTissue.CMB
        return LesionSet("cmb", inst, [LesionRecord(1, "cmb", "x", (0.0, 0.0, 0.0), 0.0, "deep")])

    maps, records = insert_lesions(
        head, ["wmh", "cmb"], rng, SynthConfig(mimics_p=0.0), {"wmh": FAKES["wmh"], "cmb": cover_wmh}
    )
    assert not maps["wmh"].any() and maps["cmb"].any()
    assert [r.extra["task"] for r in records] == ["cmb"]


def test_native_grid_labels_on_the_reference_sequence() -> None:
    cfg = SynthConfig.from_dict(
        {"working_downsample": 2, "grid": "native", "acquisition": {"resolution_scale": 2.0}}
    )
    case = simulate_case(7, ["cmb"], ["t2star", "t1"], cfg, generators=FAKES)
    assert case.info["reference"] == "t1"
    ref = case.images["t1"]
    assert case.labels["cmb"].shape == ref.shape and np.allclose(case.label_affine, ref.affine)
    assert case.brain_mask.shape == ref.shape and case.brain_mask.any()
    spacings = {seq: vol.spacing for seq, vol in case.images.items()}
    assert spacings["t2star"] != spacings["t1"]


def test_write_case_folder(tmp_path: Path) -> None:
    import nibabel as nib

    case = simulate_case(8, ["brain", "wmh"], ["flair", "t1"], FAST, generators=FAKES)
    files = {p.name for p in case.write(tmp_path / case.case_id)}
    expected = {"flair.nii.gz", "t1.nii.gz", "brain_mask.nii.gz", "wmh_labels.nii.gz"}
    assert expected | {"anatomy.nii.gz", "regions.nii.gz", "case.json"} == files
    info = json.loads((tmp_path / case.case_id / "case.json").read_text())
    assert {"lesions", "acquisition", "config", "seed"} <= set(info)
    assert {"type", "subtype", "centre_vox", "volume_ml", "region"} <= set(info["lesions"][0])
    lab = nib.load(tmp_path / case.case_id / "wmh_labels.nii.gz")
    assert np.issubdtype(lab.get_data_dtype(), np.integer)
    assert np.allclose(lab.affine, case.label_affine)
    assert SynthConfig.from_dict(info["config"]) == FAST


def test_config_yaml_validation(tmp_path: Path) -> None:
    good = tmp_path / "synth.yaml"
    good.write_text("spacing: 2.0\nfield_strengths: [3.0]\nacquisition:\n  snr: [20, 30]\n")
    cfg = SynthConfig.from_yaml(good)
    assert cfg.spacing == 2.0 and cfg.field_strengths == (3.0,) and cfg.acquisition.snr == (20, 30)
    for text, word in (
        ("grid: oblique\n", "grid"),
        ("spacing: 9\n", "spacing"),
        ("colour: 1\n", "colour"),
        ("label_visibility: {wmh: pet}\n", "label_visibility"),
        ("min_label_detectability: -1\n", "min_label_detectability"),
        ("flair_grey_white_ratio: [1.3, 1.1]\n", "flair_grey_white_ratio"),
        ("flair_grey_white_ratio: [1.1, 1.2, 1.3]\n", "flair_grey_white_ratio"),
        ("lesion_conspicuity: [0.5, 0.7, 0.9]\n", "lesion_conspicuity"),
        ("grey_white_contrast: 0.5\n", "grey_white_contrast"),
        ("white_matter_damage: [a, b]\n", "white_matter_damage"),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(InputError, match=word):
            SynthConfig.from_yaml(bad)


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parents[2] / "configs" / "synth").glob("*.yaml"))
)
def test_shipped_synth_configs_are_valid(path: Path) -> None:
    SynthConfig.from_yaml(path)


def test_unknown_names_are_input_errors() -> None:
    with pytest.raises(InputError, match="sequence"):
        simulate_case(0, ["brain"], ["dwi"], FAST)
    with pytest.raises(InputError, match="task"):
        simulate_case(0, ["stroke"], None, FAST)


def test_synth_command_writes_cases_and_rejects_bad_options(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from neurolesion.cli import app

    cfg = tmp_path / "fast.yaml"
    cfg.write_text("working_downsample: 2\nspacing: 2.0\n")
    runner = CliRunner()
    out = tmp_path / "cases"
    args = [
        "synth",
        "-o",
        str(out),
        "--task",
        "brain",
        "-s",
        "flair,t1",
        "--n",
        "2",
        "--seed",
        "3",
        "-c",
        str(cfg),
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["case_000003", "case_000004"]
    assert {"flair.nii.gz", "t1.nii.gz", "case.json"} <= {p.name for p in (out / "case_000003").iterdir()}
    bad = runner.invoke(app, ["synth", "-o", str(out), "--grid", "oblique", "-c", str(cfg)])
    assert bad.exit_code == 2


def test_gibbs_ringing_changes_images_only() -> None:
    def run(gibbs_p: float) -> Any:
        cfg = SynthConfig.from_dict(
            {"working_downsample": 2, "spacing": 2.0, "acquisition": {"gibbs_p": gibbs_p}}
        )
        return simulate_case(9, ["wmh"], ["flair", "t2"], cfg, generators=FAKES)

    off, on, again = run(0.0), run(1.0), run(1.0)
    assert {a["gibbs_kept"] for a in off.acquisition.values()} == {1.0}
    assert all(0.6 <= a["gibbs_kept"] <= 0.9 for a in on.acquisition.values())
    assert np.array_equal(off.labels["wmh"], on.labels["wmh"]) and np.array_equal(off.anatomy, on.anatomy)
    for seq, vol in on.images.items():
        assert vol.shape == off.images[seq].shape and np.allclose(vol.affine, off.images[seq].affine)
        assert not np.array_equal(vol.data, off.images[seq].data)
        assert np.array_equal(vol.data, again.images[seq].data)


def test_truth_follows_the_asymmetric_head() -> None:
    from neurolesion.synth.deform import HeadConfig

    still = HeadConfig(
        rotation_deg=0, scaling=(1, 1), head_size=(1, 1), shift_mm=0, warp_mm=0, petalia_mm=(4, 4)
    )
    cfg = SynthConfig(working_downsample=2, spacing=2.0, head=still)
    case = simulate_case(10, ["brain"], ["t2"], cfg)
    assert case.info["asymmetry"]["petalia_mm"] == 4.0
    t2 = case.images["t2"].data.reshape(case.anatomy.shape)
    csf = case.anatomy == Tissue.VENTRICLE
    flipped = csf[::-1]  # the working grid is symmetric about x = 0 mm
    assert (csf != flipped).sum() > 0.2 * csf.sum()  # the head is not mirror-symmetric
    assert t2[csf & ~flipped].mean() > 1.25 * t2[flipped & ~csf].mean()  # images move with the truth


def test_mimic_tasks_choose_which_cases_get_mimics() -> None:
    from neurolesion.anatomy.template import downsample, load_anatomy
    from neurolesion.synth.deform import random_head

    fakes = {**FAKES, "tumor": fake_generator(LesionTissue.TUMOR_ENHANCING, "tumor")}
    anatomy = downsample(load_anatomy(), 2)
    for mimic_tasks, expected in ((("cmb", "ccm"), False), (("cmb", "ccm", "tumor"), True)):
        head = random_head(anatomy, np.random.default_rng(0), HeadConfig())
        cfg = SynthConfig(mimics_p=1.0, mimic_tasks=mimic_tasks)
        insert_lesions(head, ["tumor"], np.random.default_rng(1), cfg, fakes)
        assert (head.labels == LesionTissue.CALCIFICATION).any() == expected
    assert SynthConfig.from_dict({"mimic_tasks": ["tumor"]}).mimic_tasks == ("tumor",)
    with pytest.raises(InputError, match="mimic_tasks"):
        SynthConfig(mimic_tasks=("brain",))


def test_flair_grey_white_ratio_brightens_the_cortex_and_is_recorded() -> None:
    cfg = replace(FAST, flair_grey_white_ratio=(1.25, 1.3), field_strengths=(3.0,))
    case = simulate_case(3, ["wmh"], ["flair"], cfg, generators=FAKES)
    ratio = case.acquisition["flair"]["grey_white_ratio"]
    assert 1.25 <= ratio <= 1.3
    flair = case.images["flair"].data
    cortex = ndimage.binary_erosion(case.anatomy == Tissue.CORTICAL_GM)
    wm = ndimage.binary_erosion(case.anatomy == Tissue.WM, iterations=2)
    assert np.median(flair[cortex]) > 1.1 * np.median(flair[wm])
    assert (
        "grey_white_ratio"
        not in simulate_case(3, ["wmh"], ["flair"], FAST, generators=FAKES).acquisition["flair"]
    )
    assert SynthConfig.from_dict({"flair_grey_white_ratio": [1.1, 1.2]}).flair_grey_white_ratio == (1.1, 1.2)
