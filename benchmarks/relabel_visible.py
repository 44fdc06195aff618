"""Apply the simulator's rater-visibility rule to case folders simulated before it existed.

`neurolesion.synth` now leaves out of a task's label map the lesions whose contrast-to-noise ratio on the
sequence a rater draws them on, weighed by their size, is below ``min_label_detectability``
(`neurolesion.synth.visibility`; WMH on FLAIR by default). This script writes, for each case folder of SRC, a folder in DST whose images and maps are links
to the originals and whose ``<task>_labels.nii.gz`` and ``case.json`` follow the rule, computed on the
written image (int16 on disk, so a lesion at the very threshold may fall the other way than in a new
simulation).

    python benchmarks/relabel_visible.py data/synth/test_csvd4 data/synth/test_csvd4v
    python benchmarks/relabel_visible.py data/synth/test_tumor data/synth/test_tumor_v --visibility tumor=t1c
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from neurolesion.anatomy.labels import Tissue
from neurolesion.io.atomic import atomic_path
from neurolesion.io.nifti import load_nifti, save_nifti
from neurolesion.synth.case import SynthConfig
from neurolesion.synth.visibility import invisible_instances, voxels_per_element
from neurolesion.train.data import case_folders


def relabel(case: Path, dest: Path, config: SynthConfig) -> dict[str, list[int]]:
    """Write ``dest`` (links plus the visible labels); returns task -> hidden instance ids."""
    dest.mkdir(parents=True, exist_ok=True)
    info = json.loads((case / "case.json").read_text())
    brain = load_nifti(case / "brain_mask.nii.gz", label=True).data > 0
    anatomy = load_nifti(case / "anatomy.nii.gz", label=True).data
    tissue = brain & ~np.isin(anatomy, (int(Tissue.VENTRICLE), int(Tissue.CSF)))
    hidden: dict[str, list[int]] = {}
    rewritten = set()
    for task, seq in config.label_visibility.items():
        labels_file, image_file = case / f"{task}_labels.nii.gz", case / f"{seq}.nii.gz"
        if not (labels_file.is_file() and image_file.is_file()):
            continue
        labels, image = load_nifti(labels_file, label=True), load_nifti(image_file)
        if labels.shape != image.shape:
            continue
        r = voxels_per_element(info["acquisition"][seq]["spacing"], image.spacing)
        ids = invisible_instances(
            image.data, labels.data.astype(np.int32), tissue, config.min_label_detectability, r
        )
        kept = np.where(np.isin(labels.data, ids), 0, labels.data).astype(np.int16)
        save_nifti(kept, dest / labels_file.name, like=labels)
        hidden[task] = ids
        rewritten.add(labels_file.name)
    for record in info.get("lesions", []):
        if record.get("id") in hidden.get(record.get("task"), ()):
            record.setdefault("extra", {})["visible"] = False
    info["config"] = {
        **info.get("config", {}),
        "label_visibility": dict(config.label_visibility),
        "min_label_detectability": config.min_label_detectability,
    }
    with atomic_path(dest / "case.json") as tmp:
        tmp.write_text(json.dumps(info, indent=1))
    for f in case.iterdir():
        link = dest / f.name
        if f.name not in rewritten | {"case.json"} and not link.exists():
            link.symlink_to(f.resolve())
    return hidden


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="root of simulated case folders")
    ap.add_argument("dst", type=Path, help="root of the relabelled folders (created)")
    ap.add_argument("--min-label-detectability", type=float, default=SynthConfig().min_label_detectability)
    ap.add_argument(
        "--visibility",
        action="append",
        metavar="TASK=SEQUENCE",
        help="the sequence a rater draws TASK on (repeatable; default: the simulator's, wmh=flair)",
    )
    args = ap.parse_args(argv)
    visibility = dict(SynthConfig().label_visibility)
    if args.visibility:
        pairs = [v.split("=", 1) for v in args.visibility]
        if any(len(p) != 2 for p in pairs):
            ap.error(f"--visibility {args.visibility}: expected TASK=SEQUENCE, e.g. tumor=t1c")
        visibility = {task: seq for task, seq in pairs}
    try:
        config = SynthConfig(
            min_label_detectability=args.min_label_detectability, label_visibility=visibility
        )
    except ValueError as e:
        ap.error(str(e))
    total = 0
    for case in case_folders(args.src):
        hidden = relabel(case, args.dst / case.name, config)
        n = sum(len(v) for v in hidden.values())
        total += n
        sys.stdout.write(f"{case.name}: {n} lesions hidden {hidden}\n")
    sys.stdout.write(f"{total} lesions hidden in all\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
