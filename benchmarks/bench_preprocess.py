"""Pre-processing benchmark: time of `prepare` on 1 mm cases, brain-mask Dice and registration overlays.

    python benchmarks/bench_preprocess.py                 # timings of prepare() on the real 1 mm cases
    python benchmarks/bench_preprocess.py --dice          # brain Dice on the real longitudinal scans
    python benchmarks/bench_preprocess.py --dice --overlays docs/preprocess   # and the overlay PNGs
    python benchmarks/bench_preprocess.py --overlays docs/preprocess          # the overlay PNGs only

Dice is measured in the common space of real-ms/longitudinal: a mask on a sequence's native grid is carried
to the FLAIR by our rigid registration and to the common space by `studyN_FLAIR_to_common_space.txt`, which
maps common-space points to FLAIR points (the ITK resampling convention; checked: the inverse scores
0.88 instead of 0.96 on patient01 study 1), then compared with `brainmask_common.nii.gz`.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np

from neurolesion.io.case import Case
from neurolesion.io.nifti import load_nifti
from neurolesion.preprocess.brain import clean_mask, deepbet_probability
from neurolesion.preprocess.prepare import Prepared, prepare
from neurolesion.preprocess.registration import matrix_from_itk_file
from neurolesion.preprocess.resample import Grid, resample
from neurolesion.volume import Volume

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-ms"
LONGITUDINAL = DATA / "longitudinal"
FILES = {"flair": "FLAIR", "t1": "T1W", "t2": "T2W"}
STUDIES = (("patient01", 1), ("patient01", 2), ("patient12", 1), ("patient12", 2))


def longitudinal_case(patient: str, study: int) -> Case:
    """FLAIR, T1 and T2 of one study, raw, FLAIR as reference."""
    folder = LONGITUDINAL / patient
    images = {seq: load_nifti(folder / f"study{study}_{name}.nii.gz") for seq, name in FILES.items()}
    return Case(images, source={"kind": "nifti", "path": str(folder)}, reference="flair")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def common_space_dice(
    prepared: Prepared, case: Case, patient: str, study: int, model_mask: np.ndarray
) -> dict:
    """Dice per contrast of a model-grid mask carried to each contrast's native grid, then to the common space."""
    folder = LONGITUDINAL / patient
    common = load_nifti(folder / "brainmask_common.nii.gz", label=True)
    to_flair = matrix_from_itk_file(str(folder / f"study{study}_FLAIR_to_common_space.txt"))
    scores = {}
    for seq in FILES:
        native = prepared.to_sequence(model_mask.astype(np.float32), seq) >= 0.5
        world = prepared.registration[seq].matrix @ to_flair  # common point -> FLAIR point -> seq point
        on_common = resample(
            case.images[seq].with_array(native.astype(np.float32)), Grid.of(common), transform=world
        )
        scores[seq] = dice(on_common.data >= 0.5, common.data > 0)
    return scores


def overlay_png(prepared: Prepared, path: Path, title: str) -> None:
    """Checkerboards of the FLAIR with each registered sequence (3 planes), brain mask contour in yellow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = prepared.images[prepared.reference]
    others = [s for s in prepared.images if s != prepared.reference]
    centre = [int(c) for c in np.argwhere(prepared.brain_mask).mean(axis=0)]
    tiles = (np.indices(ref.shape) // 16).sum(axis=0) % 2 == 0
    fig, axes = plt.subplots(len(others), 3, figsize=(12, 4 * len(others)), squeeze=False)
    for row, seq in enumerate(others):
        board = np.where(tiles, ref, prepared.images[seq])
        for col, axis in enumerate((2, 1, 0)):
            index = [slice(None)] * 3
            index[axis] = centre[axis]
            section = np.rot90(board[tuple(index)])
            ax = axes[row, col]
            ax.imshow(np.clip(section, -2.5, 3.5), cmap="gray")  # model grid: isotropic, true aspect
            ax.contour(
                np.rot90(prepared.brain_mask[tuple(index)]), levels=[0.5], colors="yellow", linewidths=0.6
            )
            ax.set_title(
                f"{prepared.reference.upper()} | {seq.upper()} ({('sagittal', 'coronal', 'axial')[axis]})"
            )
            ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=70)
    plt.close(fig)


def run_dice(overlays: Path | None) -> None:
    print("patient study method flair t1 t2")
    for patient, study in STUDIES:
        case = longitudinal_case(patient, study)
        prepared = prepare(case, brain="auto")
        print(f"# {patient} study{study}: timings {prepared.timings}")
        for seq, transform in prepared.registration.items():
            print(f"#   {seq} -> flair: {transform.summary()}")
        probabilities = {
            seq: deepbet_probability(Volume(image, prepared.grid.affine))
            for seq, image in prepared.images.items()
        }
        variants = {"auto": prepared.brain_mask, "deepbet-t1": clean_mask(probabilities["t1"])}
        for seq, probability in probabilities.items():
            variants[f"deepbet-{seq}-only"] = clean_mask(probability)
        for name, mask in variants.items():
            scores = common_space_dice(prepared, case, patient, study, mask)
            print(patient, study, name, *(f"{scores[s]:.4f}" for s in FILES), flush=True)
        if overlays is not None:
            overlay_png(prepared, overlays / f"{patient}_study{study}.png", f"{patient} study {study}")


def run_overlays(folder: Path) -> None:
    for patient, study in STUDIES:
        prepared = prepare(longitudinal_case(patient, study))
        overlay_png(prepared, folder / f"{patient}_study{study}.png", f"{patient} study {study}")


def run_timing(repeats: int) -> None:
    cases: dict[str, Case] = {}
    if LONGITUDINAL.is_dir():
        cases["patient01 study1 (FLAIR 0.72x0.72x4, T1, T2)"] = longitudinal_case("patient01", 1)
    cross = DATA / "cross_sectional" / "patient19"
    if cross.is_dir():
        names = {"flair": "FLAIR", "t1": "T1", "t1c": "T1POST", "t2": "T2"}
        images = {seq: load_nifti(cross / f"{name}.nii.gz") for seq, name in names.items()}
        cases["patient19 (4 sequences, 1 mm, skull-stripped)"] = Case(images, reference="flair")
    if not cases:
        raise SystemExit(f"no real data at {DATA}; nothing to time")
    for name, case in cases.items():
        for _ in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            prepared = prepare(case)
            total, cpu = time.perf_counter() - start, time.process_time() - cpu
            print(
                f"{name}: model grid {prepared.grid.shape}, {total:.1f} s wall ({cpu:.1f} s CPU, all threads)"
            )
            print(f"  steps (wall s): {prepared.timings}")
            if (
                "skull-stripped" in name
            ):  # the brain is the non-zero part of the input: brain mask without skull
                truth = case.reference_volume.data != 0
                print(
                    f"  brain Dice vs the non-zero voxels of the stripped input: {dice(prepared.native_brain_mask(), truth):.4f}"
                )
    print(f"load average during the run: {os.getloadavg()} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dice", action="store_true", help="brain Dice on the real longitudinal scans")
    parser.add_argument("--overlays", type=Path, help="folder for registration overlay PNGs")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.dice:
        run_dice(args.overlays)
    elif args.overlays:
        run_overlays(args.overlays)
    else:
        run_timing(args.repeats)


if __name__ == "__main__":
    main()
