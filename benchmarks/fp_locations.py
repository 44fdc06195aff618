"""Where a model's false positives sit on simulated cases: beside a true lesion, on the wall of the
ventricles, on the wall of the extra-cerebral CSF, or elsewhere (by the anatomy or lesion
tissue under them, e.g. a lacune's FLAIR-bright rim).

A false positive here is a predicted lesion (26-connected component of ``<task>_labels.nii.gz``) that
overlaps no true lesion. Its place is read from the simulated case's ``anatomy.nii.gz``: ``near_truth``
within ``--near-mm`` of a true lesion (a fragment or an over-reach), ``ventricle_wall`` / ``csf_wall``
within 2 voxels of the ventricles (code 7) or of the extra-cerebral CSF (code 8), else ``other:<tissue>``.

    python benchmarks/eval_model.py --model wmh-unet --cases data/synth/test_csvd4 --task wmh -o eval
    python benchmarks/fp_locations.py --pred eval/pred --cases data/synth/test_csvd4 --task wmh
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import cc3d
import numpy as np
from scipy import ndimage

from neurolesion.anatomy.labels import Tissue
from neurolesion.io.nifti import load_nifti
from neurolesion.synth.tissues import LesionTissue
from neurolesion.train.data import case_folders

#: Anatomy and lesion tissue codes of a simulated case -> their names.
TISSUE_NAMES = {t.value: t.name.lower() for t in (*Tissue, *LesionTissue)}


def classify(pred: np.ndarray, truth: np.ndarray, anatomy: np.ndarray, near_vox: int) -> Counter[str]:
    """Count the predicted components that overlap no true lesion, by where they sit."""
    near = ndimage.binary_dilation(truth, iterations=near_vox) if truth.any() else truth
    walls = {
        "ventricle_wall": ndimage.binary_dilation(anatomy == Tissue.VENTRICLE, iterations=2),
        "csf_wall": ndimage.binary_dilation(anatomy == Tissue.CSF, iterations=2),
    }
    comps = cc3d.connected_components(pred, connectivity=26)
    kinds: Counter[str] = Counter()
    for label, box in enumerate(ndimage.find_objects(comps), start=1):
        if box is None:
            continue
        m = comps[box] == label
        if (m & truth[box]).any():
            continue
        if (m & near[box]).any():
            kinds["near_truth"] += 1
            continue
        where = next((k for k, w in walls.items() if (m & w[box]).any()), None)
        if where is None:
            code = int(np.bincount(anatomy[box][m]).argmax())
            where = f"other:{TISSUE_NAMES.get(code, code)}"
        kinds[where] += 1
    return kinds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pred", required=True, type=Path, help="one sub-folder per case with <task>_labels")
    ap.add_argument("--cases", required=True, type=Path, help="the simulated cases (truth and anatomy)")
    ap.add_argument("--task", required=True)
    ap.add_argument("--near-mm", type=float, default=3.0)
    args = ap.parse_args()
    total: Counter[str] = Counter()
    per_case = {}
    for case in case_folders(args.cases):
        pred_file = args.pred / case.name / f"{args.task}_labels.nii.gz"
        if not pred_file.is_file():
            continue
        truth = load_nifti(case / f"{args.task}_labels.nii.gz", label=True)
        anatomy = load_nifti(case / "anatomy.nii.gz", label=True).data.astype(np.int64)
        near_vox = max(1, round(args.near_mm / min(truth.spacing)))
        kinds = classify(load_nifti(pred_file, label=True).data > 0, truth.data > 0, anatomy, near_vox)
        per_case[case.name] = dict(kinds)
        total.update(kinds)
    print(
        json.dumps(
            {"cases": len(per_case), "total": dict(total.most_common()), "per_case": per_case}, indent=1
        )
    )


if __name__ == "__main__":
    main()
