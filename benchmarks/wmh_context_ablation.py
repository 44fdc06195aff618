"""Is it the lesions or their surroundings? Cross-paste small WMH between a real scan and simulated ones.

The shipped WMH model misses the small lesions of the real MS scan (docs/status.md). This ablation asks
whether the lesions themselves look different from simulated ones, or the brain around them makes the
network ignore them. Each lesion of 10-100 voxels is cut out of its z-scored FLAIR as its excess over the
median of a 2-4 voxel shell around it (zero outside the lesion dilated by one voxel) and added to another
z-scored FLAIR at white-matter sites far from any lesion. The model (FLAIR only, no test-time
augmentation) runs on each host; the maximum probability inside each pasted lesion is tabulated against
the lesion's contrast (its mean excess, in brain SDs).

Experiments (``--experiments``):

- ``cross``: simulated lesions into the real brain; the real lesions moved to other sites of the real
  brain; the real lesions, and as a control simulated ones, into simulated brains.
- ``strip``: simulated lesions into simulated brains with and without the background outside the brain
  zeroed (the real scan arrives skull-stripped).
- ``cortex``: simulated lesions into simulated brains whose cortex is made 0.5 SD brighter (the real
  FLAIR's cortex is brighter than its white matter; in many simulated cases it is not).
- ``real-cortex``: the real scan's own lesions with its cortex (grey matter by a 3-class Otsu split of
  the T1) darkened by 0.3 and 0.55 SD.
- ``windows``: the real scan's own lesions with sliding windows of 32, 64 (the model's) and 128 voxels.
- ``histogram``: the real scan's own lesions with its brain's FLAIR histogram matched to each simulated
  host's (a monotonic remapping of the intensities inside the brain).
- ``patches``: simulated lesions into simulated brains whose white matter around each site is replaced by
  a cube of the real brain's white matter (``--cube`` voxels, soft edge, levelled to the host).
- ``sim-patches``: the reverse, simulated lesions into the real brain with cubes of the first simulated
  host's white matter around each site (cubes overlap once they are wider than the 14-voxel site spacing).
- ``norm-stats``: is it the network's instance normalisation? Every instance-norm layer normalises each
  64-voxel window by that window's own feature statistics, so everything else in the window sets the
  scale at which a small lesion's response arrives. Each simulated host is shifted onto the real grid
  (brain centroids aligned) and the network run on it and on the real scan with every layer's per-window
  statistics recorded; then each image is run with the other's statistics replayed window by window, and
  with statistics averaged over all windows of the simulated hosts (as a batch norm would use), and the
  lesions of 10-100 voxels of both read in place.
- ``csf-stats``: the real scan's own lesions with its FLAIR z-scored over the brain mask less its CSF
  (`neurolesion.preprocess.normalize.parenchyma` on its T2, FLAIR and T1; and the FLAIR's darkest
  3-class Otsu class alone), as the simulated training images were: the simulator's brain mask holds no
  extra-cerebral CSF, a brain-extraction mask does.

    python benchmarks/wmh_context_ablation.py --real ../shared/data/real-ms/cross_sectional/patient19 \\
        --brain-mask out/brain_mask.nii.gz --sim data/synth/test_csvd4 --experiments cross strip

``--brain-mask`` is the mask `neurolesion segment` wrote for the real case (its FLAIR grid). The simulated
hosts are the case folders of ``--sim`` whose FLAIR was acquired with slices of at most 1.5 mm.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as nd
from skimage.exposure import match_histograms
from skimage.filters import threshold_multiotsu
from torch import nn

from neurolesion.anatomy.labels import Tissue
from neurolesion.infer.predict import Predictor, stack_inputs
from neurolesion.io.nifti import load_nifti
from neurolesion.metrics.lesionwise import label_lesions
from neurolesion.preprocess.normalize import normalize, parenchyma
from neurolesion.train.data import case_folders
from neurolesion.volume import Volume

#: Sites drawn once per brain; any experiment uses the first ones (the greedy draw makes a shorter list a prefix).
MAX_SITES = 100
BINS = ((0.0, 1.0), (1.0, 1.5), (1.5, 2.0), (2.0, 3.0), (3.0, 99.0))


@dataclass
class Lesion:
    delta: np.ndarray  # excess over the local background, z units, on a box around the lesion
    core: np.ndarray  # the lesion's voxels in that box
    contrast: float


@dataclass
class Host:
    name: str
    z: np.ndarray
    brain: np.ndarray
    lesions: np.ndarray
    wm: np.ndarray
    gm: np.ndarray
    raw: np.ndarray
    spacing: tuple[float, float, float]
    centres: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.centres = sites(self.wm, self.lesions, MAX_SITES, seed=0)


def zscore(raw: np.ndarray, brain: np.ndarray) -> np.ndarray:
    return normalize(Volume(raw, np.eye(4)), brain).data


def cut(z: np.ndarray, labels: np.ndarray, lo: int = 10, hi: int = 100) -> list[Lesion]:
    """The lesions of `lo` to `hi` voxels (26-connected) as excess patches."""
    lab, _ = label_lesions(labels, connectivity=26)
    out = []
    for i, box in enumerate(nd.find_objects(lab), 1):
        big = tuple(slice(max(s.start - 5, 0), s.stop + 5) for s in box)
        core = lab[big] == i
        if not lo <= core.sum() < hi:
            continue
        shell = (
            nd.binary_dilation(core, iterations=4) & ~nd.binary_dilation(core, iterations=1) & ~labels[big]
        )
        if shell.sum() < 20:
            continue
        bg = float(np.median(z[big][shell]))
        delta = np.where(nd.binary_dilation(core), np.clip(z[big] - bg, 0, None), 0).astype(np.float32)
        out.append(Lesion(delta, core, float(z[big][core].mean() - bg)))
    return out


def sites(wm: np.ndarray, avoid: np.ndarray, k: int, seed: int, gap: int = 14) -> list[np.ndarray]:
    """Up to `k` centres in eroded white matter, 10 voxels from `avoid` and `gap` from each other."""
    ok = nd.binary_erosion(wm, iterations=3) & (nd.distance_transform_edt(~avoid) > 10)
    cand = np.argwhere(ok)
    np.random.default_rng(seed).shuffle(cand)
    chosen: list[np.ndarray] = []
    for c in cand:
        if all(np.abs(c - p).max() >= gap for p in chosen):
            chosen.append(c)
            if len(chosen) == k:
                break
    return chosen


def paste(
    z: np.ndarray, lesions: Sequence[Lesion], centres: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """`z` with the lesions added at the centres; the pasted cores' labels and contrasts."""
    z = z.copy()
    cores = np.zeros(z.shape, np.int32)
    contrasts: list[float] = []
    for lesion, c in zip(lesions, centres, strict=False):
        shape = np.array(lesion.delta.shape)
        lo = c - shape // 2
        if (lo < 0).any() or (lo + shape > z.shape).any():
            continue
        box = tuple(slice(a, a + b) for a, b in zip(lo, shape, strict=True))
        z[box] += lesion.delta
        contrasts.append(lesion.contrast)
        cores[box][lesion.core] = len(contrasts)
    return z, cores, contrasts


def transplant(
    z: np.ndarray,
    centres: Sequence[np.ndarray],
    donor: np.ndarray,
    donor_centres: Sequence[np.ndarray],
    r: int,
) -> np.ndarray:
    """`z` with a cube of half-side `r` around each centre replaced by one of `donor` (soft edge, levelled)."""
    z = z.copy()
    window = nd.gaussian_filter(np.pad(np.ones((2 * r - 5,) * 3, np.float32), 3), 2.0)
    for k, c in enumerate(centres):
        d = donor_centres[k % len(donor_centres)]
        if (c - r < 0).any() or (c + r >= z.shape).any() or (d - r < 0).any() or (d + r >= donor.shape).any():
            continue
        hb = tuple(slice(a - r, a + r + 1) for a in c)
        db = tuple(slice(a - r, a + r + 1) for a in d)
        piece = donor[db] - np.median(donor[db]) + np.median(z[hb])
        z[hb] = window * piece + (1 - window) * z[hb]
    return z


class Model:
    def __init__(self, name: str, window: int | None = None) -> None:
        self.predictor = Predictor(name, tta=False)
        if window:  # another sliding-window size: instance norm then sees other statistics
            loaded = self.predictor.model
            config = dataclasses.replace(loaded.config, patch_size=(window,) * 3)
            self.predictor.model = dataclasses.replace(loaded, config=config)

    def __call__(self, z: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
        """Probabilities on the grid of `z` (voxel size `spacing`; resampled to the model's and back)."""
        image, present = stack_inputs({"flair": z}, self.predictor.model.card.inputs, "ablation")
        return self.predictor(image, spacing, present)[0]


#: What the swapped instance-norm layers do: "own" (ordinary), "record", "replay" or "fixed".
NORM: dict[str, object] = {"mode": "own", "stats": {}, "fixed": {}}


class StatsNorm(nn.Module):
    """Instance norm (no affine) whose per-window statistics can be recorded, replayed or fixed.

    The statistics live in the module-level `NORM` (the predictor deep-copies the network)."""

    def __init__(self, key: str, eps: float) -> None:
        super().__init__()
        self.key, self.eps = key, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        mode, stats = NORM["mode"], NORM["stats"]
        assert isinstance(stats, dict)
        if mode == "replay":
            mean, var = stats[self.key].pop(0)
        elif mode == "fixed":
            fixed = NORM["fixed"]
            assert isinstance(fixed, dict)
            mean, var = fixed[self.key]
        else:
            var, mean = torch.var_mean(xf, dim=(2, 3, 4), keepdim=True, unbiased=False)
            if mode == "record":
                stats.setdefault(self.key, []).append((mean, var))
        return ((xf - mean) / torch.sqrt(var + self.eps)).to(x.dtype)


def swap_norms(net: nn.Module) -> None:
    """Replace every InstanceNorm3d of `net` by a `StatsNorm` in place."""
    for pname, parent in list(net.named_modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.InstanceNorm3d):
                setattr(parent, name, StatsNorm(f"{pname}.{name}", child.eps))


def run_norm(model: Model, z: np.ndarray, spacing: Sequence[float], mode: str) -> np.ndarray:
    NORM["mode"] = mode
    try:
        return model(z, spacing)
    finally:
        NORM["mode"] = "own"


def align(h: Host, shape: tuple[int, ...], centre: np.ndarray) -> Host:
    """`h` shifted onto a grid of `shape` with its brain centroid at `centre` (background outside)."""
    shift = np.round(centre - np.argwhere(h.brain).mean(0)).astype(int)
    src = tuple(slice(max(-d, 0), min(n, m - d)) for d, n, m in zip(shift, h.z.shape, shape, strict=True))
    dst = tuple(slice(s.start + d, s.stop + d) for s, d in zip(src, shift, strict=True))

    def moved(a: np.ndarray, fill: float) -> np.ndarray:
        out = np.full(shape, fill, a.dtype)
        out[dst] = a[src]
        return out

    bg = float(np.median(h.z[~h.brain]))
    return Host(
        h.name,
        moved(h.z, bg),
        moved(h.brain, 0),
        moved(h.lesions, 0),
        moved(h.wm, 0),
        moved(h.gm, 0),
        moved(h.raw, 0),
        h.spacing,
    )


def in_place_row(name: str, prob: np.ndarray, lesions: np.ndarray) -> dict[str, object]:
    """Maximum probability inside each of the lesions of 10-100 voxels of `lesions`, in place."""
    lab, _ = label_lesions(lesions, connectivity=26)
    sizes = np.bincount(lab.ravel())
    ids = [i for i in range(1, len(sizes)) if 10 <= sizes[i] < 100]
    pmax = np.asarray(nd.maximum(prob, lab, ids))
    out: dict[str, object] = {
        "host": name,
        "n": len(ids),
        "median_pmax": float(np.median(pmax)),
        "above_0.5": int((pmax > 0.5).sum()),
    }
    print(json.dumps(out), flush=True)
    return out


def norm_stats(model: Model, real: Host, hosts: Sequence[Host]) -> list[dict[str, object]]:
    """The ``norm-stats`` experiment (see the module)."""
    swap_norms(model.predictor.model.net)
    centre = np.argwhere(real.brain).mean(0)
    stats = NORM["stats"]
    assert isinstance(stats, dict)
    rows = []
    run_norm(model, real.z, real.spacing, "record")
    real_stats = {k: list(v) for k, v in stats.items()}
    stats.clear()
    rows.append(in_place_row("real lesions, own statistics", model(real.z, real.spacing), real.lesions))
    pooled: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for h0 in hosts:
        h = align(h0, real.z.shape, centre)
        own = run_norm(model, h.z, real.spacing, "record")
        sim_stats = {k: list(v) for k, v in stats.items()}
        for k, v in sim_stats.items():
            pooled.setdefault(k, []).extend(v)
        rows.append(in_place_row(f"{h.name} lesions, own statistics", own, h.lesions))
        stats.clear()
        stats.update({k: list(v) for k, v in real_stats.items()})
        rows.append(
            in_place_row(
                f"{h.name} lesions, real scan's statistics",
                run_norm(model, h.z, real.spacing, "replay"),
                h.lesions,
            )
        )
        stats.clear()
        stats.update(sim_stats)
        rows.append(
            in_place_row(
                f"real lesions, {h.name}'s statistics",
                run_norm(model, real.z, real.spacing, "replay"),
                real.lesions,
            )
        )
        stats.clear()
    fixed = NORM["fixed"]
    assert isinstance(fixed, dict)
    for k, v in pooled.items():  # the pooled mean and variance of all windows (inside-brain and not)
        means = torch.cat([m for m, _ in v]).mean(0, keepdim=True)
        second = torch.cat([s + m**2 for m, s in v]).mean(0, keepdim=True)
        fixed[k] = (means, second - means**2)
    rows.append(
        in_place_row(
            "real lesions, pooled simulated statistics",
            run_norm(model, real.z, real.spacing, "fixed"),
            real.lesions,
        )
    )
    for h0 in hosts:
        h = align(h0, real.z.shape, centre)
        rows.append(
            in_place_row(
                f"{h.name} lesions, pooled simulated statistics",
                run_norm(model, h.z, real.spacing, "fixed"),
                h.lesions,
            )
        )
    return rows


def row(name: str, prob: np.ndarray, cores: np.ndarray, contrasts: list[float]) -> dict[str, object]:
    ids = np.arange(1, len(contrasts) + 1)
    pmax = np.asarray(nd.maximum(prob, cores, ids))
    con = np.asarray(contrasts)
    out: dict[str, object] = {
        "host": name,
        "n": len(ids),
        "median_pmax": float(np.median(pmax)),
        "above_0.5": int((pmax > 0.5).sum()),
    }
    for lo, hi in BINS:
        m = (con >= lo) & (con < hi)
        if m.any():
            out[f"contrast {lo}-{hi}"] = {"n": int(m.sum()), "median_pmax": float(np.median(pmax[m]))}
    print(json.dumps(out), flush=True)
    return out


def real_host(folder: Path, brain_mask: Path) -> Host:
    flair = load_nifti(folder / "FLAIR.nii.gz")
    truth = load_nifti(folder / "gt.nii.gz", label=True).data > 0
    brain = load_nifti(brain_mask, label=True).data > 0
    t1 = load_nifti(folder / "T1.nii.gz").data
    classes = np.digitize(t1, threshold_multiotsu(t1[brain & ~truth], 3))
    away = ~nd.binary_dilation(truth, iterations=2)
    return Host(
        "real",
        zscore(flair.data, brain),
        brain,
        truth,
        brain & (classes == 2) & away,
        brain & (classes == 1) & away,
        flair.data,
        flair.spacing,
    )


def sim_hosts(root: Path) -> list[Host]:
    hosts = []
    for case in case_folders(root):
        info = json.loads((case / "case.json").read_text())
        if max(info["acquisition"]["flair"]["spacing"]) > 1.5:
            continue
        flair = load_nifti(case / "flair.nii.gz")
        brain = load_nifti(case / "brain_mask.nii.gz", label=True).data > 0
        lesions = load_nifti(case / "wmh_labels.nii.gz", label=True).data > 0
        anatomy = load_nifti(case / "anatomy.nii.gz", label=True).data
        hosts.append(
            Host(
                case.name,
                zscore(flair.data, brain),
                brain,
                lesions,
                (anatomy == int(Tissue.WM)) & ~lesions,
                anatomy == int(Tissue.CORTICAL_GM),
                flair.data,
                flair.spacing,
            )
        )
    return hosts


def into(model: Model, host: Host, z: np.ndarray, lesions: Sequence[Lesion], name: str) -> dict[str, object]:
    """Paste `lesions` at the host's sites into `z` (the host's image, possibly altered) and score them."""
    centres = host.centres[: len(lesions)]
    zz, cores, contrasts = paste(z, lesions[: len(centres)], centres)
    return row(name, model(zz, host.spacing), cores, contrasts)


def _real_cubes(real: Host, donors: Sequence[np.ndarray], n: int, r: int, h: Host) -> np.ndarray:
    return transplant(h.z, h.centres[:n], real.z, donors, r)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, required=True, help="real case folder (FLAIR, T1, gt)")
    ap.add_argument("--brain-mask", type=Path, required=True, help="brain mask on the real FLAIR grid")
    ap.add_argument("--sim", type=Path, required=True, help="folder of simulated case folders")
    ap.add_argument("--model", default="wmh-unet")
    ap.add_argument("--hosts", type=int, default=2, help="simulated hosts used")
    ap.add_argument("--cube", type=int, nargs="+", default=[21], help="sides of the transplanted cubes")
    ap.add_argument(
        "--experiments",
        nargs="+",
        default=["cross"],
        choices=[
            "cross",
            "strip",
            "cortex",
            "real-cortex",
            "windows",
            "histogram",
            "patches",
            "sim-patches",
            "norm-stats",
            "csf-stats",
        ],
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = Model(args.model)
    real = real_host(args.real, args.brain_mask)
    hosts = sim_hosts(args.sim)
    real_lesions = cut(real.z, real.lesions)
    sim_lesions = [lesion for h in hosts for lesion in cut(h.z, h.lesions)]
    print(
        f"real lesions of 10-100 voxels: {len(real_lesions)}, median contrast "
        f"{np.median([x.contrast for x in real_lesions]):.2f}; simulated ({len(hosts)} thin-slice cases): "
        f"{len(sim_lesions)}, {np.median([x.contrast for x in sim_lesions]):.2f}"
    )
    n = len(real_lesions)
    rows: list[dict[str, object]] = []
    chosen = hosts[: args.hosts]
    variants: dict[str, Callable[[Host], np.ndarray]] = {}
    if "cross" in args.experiments:
        rows.append(into(model, real, real.z, sim_lesions, "simulated lesions -> real brain"))
        rows.append(into(model, real, real.z, real_lesions, "real lesions -> other sites of the real brain"))
        for h in chosen:
            rows.append(into(model, h, h.z, real_lesions, f"real lesions -> {h.name}"))
    if "strip" in args.experiments:
        variants["skull-stripped"] = lambda h: zscore(h.raw * h.brain, h.brain)
    if "cortex" in args.experiments:
        variants["cortex +0.5 SD"] = lambda h: h.z + 0.5 * nd.gaussian_filter(h.gm.astype(np.float32), 0.7)
    if "patches" in args.experiments:
        donors = sites(real.wm, real.lesions, 60, seed=1, gap=8)
        for cube in args.cube:
            variants[f"real white-matter cubes of {cube | 1}"] = partial(
                _real_cubes, real, donors, n, cube // 2
            )
    if "cross" in args.experiments or variants:
        for h in chosen:
            rows.append(into(model, h, h.z, sim_lesions[:n], f"simulated lesions -> {h.name}"))
    for label, make in variants.items():
        for h in chosen:
            rows.append(into(model, h, make(h), sim_lesions[:n], f"simulated lesions -> {h.name}, {label}"))
    if "sim-patches" in args.experiments:
        donor = chosen[0]
        donors = sites(donor.wm, donor.lesions, 60, seed=1, gap=8)
        targets = real.centres[: len(sim_lesions)]
        for cube in args.cube:
            z = transplant(real.z, targets, donor.z, donors, cube // 2)
            name = f"simulated lesions -> real brain, {donor.name} white-matter cubes of {cube | 1}"
            rows.append(into(model, real, z, sim_lesions, name))
    in_place: dict[str, tuple[np.ndarray, Model]] = {}
    if "real-cortex" in args.experiments:
        for shift in (0.0, 0.3, 0.55):
            gm = nd.gaussian_filter(real.gm.astype(np.float32), 0.7)
            in_place[f"real lesions in place, cortex -{shift} SD"] = (real.z - shift * gm, model)
    if "windows" in args.experiments:
        for window in (32, 64, 128):
            in_place[f"real lesions in place, windows of {window}"] = (real.z, Model(args.model, window))
    if "csf-stats" in args.experiments:
        seqs = {s: load_nifti(args.real / f"{s.upper()}.nii.gz").data for s in ("t2", "flair", "t1")}
        flair_dark = real.brain & (real.raw < threshold_multiotsu(real.raw[real.brain], 3)[0])
        for name, stats in (
            ("brain mask", real.brain),
            ("brain mask less its CSF (parenchyma: T2 rule)", parenchyma(seqs, real.brain)),
            ("brain mask less the FLAIR's darkest class", real.brain & ~flair_dark),
        ):
            in_place[f"real lesions in place, z-score over the {name}"] = (zscore(real.raw, stats), model)
    if "histogram" in args.experiments:
        for h in chosen:
            z = real.z.copy()
            z[real.brain] = match_histograms(real.z[real.brain], h.z[h.brain])
            in_place[f"real lesions in place, brain histogram matched to {h.name}"] = (z, model)
    if in_place:
        lab, _ = label_lesions(real.lesions, connectivity=26)
        sizes = np.bincount(lab.ravel())
        ids = [i for i in range(1, len(sizes)) if 10 <= sizes[i] < 100]
        for name, (z, net) in in_place.items():
            pmax = np.asarray(nd.maximum(net(z, real.spacing), lab, ids))
            rows.append(
                {
                    "host": name,
                    "n": len(ids),
                    "median_pmax": float(np.median(pmax)),
                    "above_0.5": int((pmax > 0.5).sum()),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    if "norm-stats" in args.experiments:
        rows += norm_stats(Model(args.model), real, chosen)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
