"""Simulator realism: tissue-contrast order, lesion counts and sizes, and z-scored intensities vs real MS data.

For N simulated cases (every task, every sequence, 1 mm common grid) each image is normalised as inference
does (clip at 0.5/99.5 percentiles and z-score, `preprocess.normalize`) inside the intracranial volume
(brain mask plus extra-cerebral CSF, like the real data's skull-stripping mask); the median z
of each tissue per case gives the contrast order per sequence. Against the real patient
(../shared/data/real-ms/cross_sectional/patient19: skull-stripped, MNI, 1 mm, consensus lesion mask) the
z-scored intensity of lesions and of normal-appearing white matter (MNI WM probability > 0.9 eroded by 2 mm,
2 mm away from lesions, not CSF-like on T2) on FLAIR, T2 and T1 is compared with the range over simulated cases (WMH and NAWM), and the
histograms are drawn to docs/synth/realism_histograms.png.

    python benchmarks/bench_synth_realism.py --cases 8 [--config configs/synth/wmh_flair_grey.yaml]

With ``--config`` the cases are simulated with that `SynthConfig` YAML instead of the defaults. The real
patient's grey matter (MNI grey-matter probability > 0.7, 1 mm from lesions, not CSF-like on T2) gives a
grey-minus-white contrast per sequence to compare with the simulated cortex-minus-white-matter one.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import ndimage

from neurolesion.anatomy.labels import Tissue as T
from neurolesion.synth.tissues import LesionTissue as L

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-ms" / "cross_sectional" / "patient19"
OUT = Path(__file__).resolve().parents[1] / "docs" / "synth" / "realism_histograms.png"
TISSUES = {
    "CSF": [T.VENTRICLE],
    "WM": [T.WM],
    "GM": [T.CORTICAL_GM],
    "WMH": [L.WMH],
    "CMB": [L.CMB],
    "enhancing": [L.TUMOR_ENHANCING, L.MENINGIOMA, L.SCHWANNOMA],
}
EXPECTED = {
    "flair": ["CSF", "WM", "GM", "WMH"],
    "t2": ["WM", "GM", "WMH", "CSF"],
    "t1": ["CSF", "GM", "WM"],
    "t1c": ["CSF", "GM", "WM", "enhancing"],
    "t2star": ["CMB", "WM", "GM", "CSF"],
    "swi": ["CMB", "WM"],
}
REAL_FILES = {"flair": "FLAIR", "t2": "T2", "t1": "T1"}


def zscored(image: np.ndarray, brain: np.ndarray) -> np.ndarray:
    from neurolesion.preprocess.normalize import normalize
    from neurolesion.volume import Volume

    return normalize(Volume(image, np.eye(4)), brain).data


def simulate(n: int, config: Path | None = None) -> tuple[dict, dict, dict]:
    """Per-case medians per (sequence, tissue), pooled z samples of WMH / NAWM, lesion statistics."""
    from neurolesion.synth.case import SynthConfig, simulate_case

    cfg = SynthConfig.from_yaml(config) if config else None

    medians: dict[tuple[str, str], list[float]] = defaultdict(list)
    pooled: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    lesions: dict[str, list] = defaultdict(list)
    rng = np.random.default_rng(0)
    for i in range(n):
        case = simulate_case(200 + i, ["all"], None, cfg)
        # z-score inside the intracranial volume, like the real data's skull-stripping mask
        brain = (case.brain_mask > 0) | (case.anatomy == T.CSF)
        for r in case.records:
            lesions[str(r.extra.get("task"))].append((i, r.volume_ml, r.extra.get("diameter_mm"), r.region))
        for seq, vol in case.images.items():
            z = zscored(vol.data, brain)
            for name, codes in TISSUES.items():
                m = np.isin(case.anatomy, codes)
                if name == "WM":
                    m &= ~ndimage.binary_dilation(case.anatomy >= 32, iterations=2)
                if m.sum() >= 5:
                    medians[(seq, name)].append(float(np.median(z[m])))
                    if name in ("WM", "WMH"):
                        vals = z[m]
                        pooled[(seq, name)].append(rng.choice(vals, min(vals.size, 20000), replace=False))
        print(f"  case {i}: {len(case.records)} lesions, field {case.info['field_strength']} T")
    return medians, pooled, lesions


def real_values() -> dict[tuple[str, str], np.ndarray]:
    """z-scored lesion and NAWM intensities of the real patient (empty when the data is absent)."""
    if not REAL.is_dir():
        print(f"real data not found at {REAL}: skipping the comparison")
        return {}
    import nibabel as nib

    from neurolesion.anatomy.atlases import template_grid
    from neurolesion.preprocess.resample import Grid, resample
    from neurolesion.volume import Volume

    gt_img = nib.nifti1.load(REAL / "gt.nii.gz")
    gt = np.asarray(gt_img.dataobj) > 0
    grid = template_grid()
    patient = Grid(gt_img.affine, gt.shape)

    def prior(values: np.ndarray) -> np.ndarray:
        """An MNI tissue prior on the patient's grid."""
        return resample(Volume(values, grid.affine), patient).data

    wm = prior(grid.wm)
    # deep white matter only: 2 mm inside the prior, so that cortex and CSF partial volumes stay out
    nawm = ndimage.binary_erosion(wm > 0.9, iterations=2) & ~ndimage.binary_dilation(gt, iterations=2)
    z = {}
    inside = np.ones(gt.shape, bool)
    for seq, stem in REAL_FILES.items():
        img = np.asarray(nib.nifti1.load(REAL / f"{stem}.nii.gz").dataobj, dtype=np.float32)
        z[seq] = zscored(img, img != 0)
        inside &= img != 0
    nawm &= z["t2"] < 1.5  # the atlas prior overlaps this atrophic patient's CSF: drop CSF-like voxels
    nawm &= inside  # and the prior reaches outside this patient's skull-stripped brain
    grey = (prior(grid.gm) > 0.7) & ~ndimage.binary_dilation(gt, iterations=1) & (z["t2"] < 1.5) & inside
    out = {}
    for seq, zs in z.items():
        out[(seq, "WMH")] = zs[gt]
        out[(seq, "WM")] = zs[nawm]
        out[(seq, "GM")] = zs[grey]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--config", type=Path, default=None, help="SynthConfig YAML (default: the defaults)")
    args = parser.parse_args()
    medians, pooled, lesions = simulate(args.cases, args.config)

    print("\ncontrast order (cases whose per-tissue medians follow the expected order):")
    for seq, order in EXPECTED.items():
        ok = total = 0
        for i in range(args.cases):
            vals = [medians[(seq, t)][i] if len(medians[(seq, t)]) > i else None for t in order]
            if any(v is None for v in vals):
                continue
            total += 1
            ok += vals == sorted(vals)
        meds = "  ".join(f"{t} {np.median(medians[(seq, t)]):+.2f}" for t in order if medians[(seq, t)])
        print(f"  {seq:<7} {' < '.join(order):<36} {ok}/{total}   median z: {meds}")

    print("\nlesions per case and size (all simulated cases):")
    for task, recs in sorted(lesions.items()):
        per_case = np.bincount([r[0] for r in recs], minlength=args.cases)
        vols = np.array([r[1] for r in recs])
        diam = np.array([r[2] for r in recs if r[2] is not None], dtype=float)
        dtxt = f", diameter {np.min(diam):.1f}-{np.max(diam):.1f} mm" if diam.size else ""
        print(
            f"  {task:<7} count {per_case.min()}-{per_case.max()} (median {np.median(per_case):.0f}), "
            f"volume {vols.min() * 1000:.1f} ul - {vols.max():.2f} ml{dtxt}"
        )

    real = real_values()
    if real:
        print(
            "\nreal patient19 vs simulated (z inside the brain): real median, simulated per-case median range"
        )
        for seq in REAL_FILES:
            for t, label in (("WMH", "lesion"), ("WM", "NAWM")):
                lo, hi = np.min(medians[(seq, t)]), np.max(medians[(seq, t)])
                r = float(np.median(real[(seq, t)]))
                inside = "inside" if lo <= r <= hi else "OUTSIDE"
                print(f"  {seq:<6} {label:<7} real {r:+.2f}   simulated {lo:+.2f} .. {hi:+.2f}   {inside}")
            sim_gm = np.array(medians[(seq, "GM")]) - np.array(medians[(seq, "WM")])
            r_gm = float(np.median(real[(seq, "GM")]) - np.median(real[(seq, "WM")]))
            print(
                f"  {seq:<6} grey-white real {r_gm:+.2f}   simulated {sim_gm.min():+.2f} .. {sim_gm.max():+.2f}"
                f" (median {np.median(sim_gm):+.2f}, {int((sim_gm < 0).sum())}/{sim_gm.size} below 0)"
            )
            sim = np.array(medians[(seq, "WMH")]) - np.array(medians[(seq, "WM")])
            r = float(np.median(real[(seq, "WMH")]) - np.median(real[(seq, "WM")]))
            inside = "inside" if sim.min() <= r <= sim.max() else "OUTSIDE"
            print(
                f"  {seq:<6} contrast real {r:+.2f}   simulated {sim.min():+.2f} .. {sim.max():+.2f}   {inside}"
            )
            print(
                f"  {seq:<6} NAWM spread (IQR) real {np.subtract(*np.percentile(real[(seq, 'WM')], [75, 25])):.2f}"
                f"   simulated {np.median([np.subtract(*np.percentile(v, [75, 25])) for v in pooled[(seq, 'WM')]]):.2f}"
            )
    plot(pooled, real, args.out)
    print(f"\nhistograms: {args.out}")


def plot(pooled: dict, real: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    bins = np.linspace(-4, 6, 81)
    for ax, seq in zip(axes, REAL_FILES, strict=True):
        for t, colour in (("WM", "tab:blue"), ("WMH", "tab:red")):
            for k, vals in enumerate(pooled[(seq, t)]):
                ax.hist(
                    vals,
                    bins,
                    density=True,
                    histtype="step",
                    color=colour,
                    alpha=0.35,
                    label=f"simulated {'NAWM' if t == 'WM' else 'WMH'} (per case)" if k == 0 else None,
                )
            if (seq, t) in real:
                ax.hist(
                    real[(seq, t)],
                    bins,
                    density=True,
                    histtype="step",
                    color=colour,
                    linewidth=2.5,
                    label=f"real {'NAWM' if t == 'WM' else 'lesion'} (patient19)",
                )
        ax.set_title(f"{seq}: z-score inside the brain")
        ax.set_xlabel("z")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main()
