"""Cross-checks on a real expert lesion mask (MS patient19 FLAIR, 1 mm MNI): our metrics vs MedPy/panoptica."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from medpy.metric import binary as mp
from panoptica import (
    ConnectedComponentsInstanceApproximator,
    InputType,
    Metric,
    NaiveThresholdMatching,
    Panoptica_Evaluator,
)

from neurolesion.metrics import match_lesions, overlap_metrics, surface_metrics

pytestmark = pytest.mark.realdata


@pytest.fixture
def patient19(shared_data: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """(z-score threshold baseline prediction, expert truth, spacing) of cross_sectional/patient19."""
    folder = shared_data / "real-ms" / "cross_sectional" / "patient19"
    if not (folder / "gt.nii.gz").is_file():
        pytest.skip(f"{folder}/gt.nii.gz not found")
    flair_img = nib.load(str(folder / "FLAIR.nii.gz"))
    flair = np.asarray(flair_img.dataobj, dtype=np.float32)
    truth = np.asarray(nib.load(str(folder / "gt.nii.gz")).dataobj) > 0
    brain = flair > 0
    z = (flair - flair[brain].mean()) / flair[brain].std()
    spacing = tuple(float(s) for s in flair_img.header.get_zooms()[:3])
    return (z > 1.5) & brain, truth, spacing


def test_real_mask_overlap_and_surface_match_medpy(
    patient19: tuple[np.ndarray, np.ndarray, tuple[float, ...]],
) -> None:
    pred, truth, spacing = patient19
    m = overlap_metrics(pred, truth, spacing)
    assert m["dice"] == pytest.approx(mp.dc(pred, truth), abs=1e-6)
    assert m["recall"] == pytest.approx(mp.recall(pred, truth), abs=1e-6)
    assert 0.2 < m["dice"] < 0.6  # the documented baseline is about 0.38
    s = surface_metrics(pred, truth, spacing)
    assert s["hd95_mm"] == pytest.approx(mp.hd95(pred, truth, spacing), abs=1e-6)


def test_real_mask_lesion_counts_match_panoptica(
    patient19: tuple[np.ndarray, np.ndarray, tuple[float, ...]],
) -> None:
    pred, truth, spacing = patient19
    evaluator = Panoptica_Evaluator(
        expected_input=InputType.SEMANTIC,
        instance_approximator=ConnectedComponentsInstanceApproximator(),
        instance_matcher=NaiveThresholdMatching(
            matching_metric=Metric.DSC, matching_threshold=0.0, strict_threshold=True
        ),
    )
    ref = evaluator.evaluate(pred.astype(np.uint8), truth.astype(np.uint8), verbose=False)["ungrouped"]
    m = match_lesions(pred, truth, spacing, rule="overlap")
    assert (m.n_pred, m.n_truth) == (ref.n_pred_instances, ref.n_ref_instances)
    # panoptica matches greedily; ours is an optimal one-to-one assignment, so it never finds fewer.
    assert m.tp >= ref.tp and m.tp - ref.tp <= 0.05 * max(ref.tp, 1)
