"""PNG montage of a simulated case: every sequence in three planes with the truth outlined.

The planes pass through the centre of the largest lesion (the brain's centre when there is none). Each
sequence is shown on its own grid; the truth is sampled onto the displayed slice by nearest neighbour through
the affines, so native (anisotropic, oblique) acquisitions get correct outlines too.

Example:
    >>> write_preview(case, Path("case_000001/preview.png"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurolesion.synth.case import SimCase

#: Outline colour per task (brain mask drawn when no lesion task is present).
COLOURS: dict[str, str] = {
    "wmh": "yellow",
    "cmb": "red",
    "lacune": "cyan",
    "epvs": "lime",
    "ccm": "magenta",
    "tumor": "orange",
    "brain": "white",
}
PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")
_RAS_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}


def focus_point(case: SimCase) -> np.ndarray:
    """RAS mm of the centre of the largest lesion, or of the brain mask."""
    best, best_n = None, 0
    for lab in case.labels.values():
        if lab.any():
            ids, counts = np.unique(lab[lab > 0], return_counts=True)
            if counts.max() > best_n:
                best_n = int(counts.max())
                best = np.argwhere(lab == ids[np.argmax(counts)]).mean(axis=0)
    if best is None:
        best = np.argwhere(case.brain_mask > 0).mean(axis=0) if case.brain_mask.any() else np.zeros(3)
    return case.label_affine[:3, :3] @ best + case.label_affine[:3, 3]


def _slice_axes(affine: np.ndarray, plane: str) -> tuple[int, int, int]:
    """(slice axis, row axis, column axis) of a grid for a display plane."""
    direction = np.abs(affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0))
    slice_axis = int(np.argmax(direction[_RAS_AXIS[plane]]))
    rest = [a for a in range(3) if a != slice_axis]
    # horizontal: the axis most along R-L (axial, coronal) or A-P (sagittal)
    horiz_ras = 1 if plane == "sagittal" else 0
    h = max(rest, key=lambda a: direction[horiz_ras, a])
    v = next(a for a in rest if a != h)
    return slice_axis, h, v


def _plane_slice(
    image: np.ndarray, affine: np.ndarray, point: np.ndarray, plane: str
) -> tuple[np.ndarray, np.ndarray]:
    """(2D image oriented for display, (3, H, V) voxel indices of its pixels in the image grid)."""
    s_ax, h_ax, v_ax = _slice_axes(affine, plane)
    vox = np.linalg.inv(affine) @ np.append(point, 1.0)
    k = int(np.clip(np.rint(vox[s_ax]), 0, image.shape[s_ax] - 1))
    grid = np.meshgrid(np.arange(image.shape[h_ax]), np.arange(image.shape[v_ax]), indexing="ij")
    idx = np.zeros((3, *grid[0].shape), dtype=np.int64)
    idx[s_ax], idx[h_ax], idx[v_ax] = k, grid[0], grid[1]
    # flip so that right is on the viewer's left (radiological) and superior / anterior up
    horiz_ras = 1 if plane == "sagittal" else 0
    vert_ras = 1 if plane == "axial" else 2
    if affine[horiz_ras, h_ax] > 0 and plane != "sagittal":
        idx = idx[:, ::-1, :]
    if plane == "sagittal" and affine[horiz_ras, h_ax] < 0:
        idx = idx[:, ::-1, :]
    if affine[vert_ras, v_ax] < 0:
        idx = idx[:, :, ::-1]
    return image[idx[0], idx[1], idx[2]], idx


def _labels_on(
    idx: np.ndarray, img_affine: np.ndarray, labels: np.ndarray, lab_affine: np.ndarray
) -> np.ndarray:
    """Nearest-neighbour label values at the image pixels `idx`."""
    m = np.linalg.inv(lab_affine) @ img_affine
    pts = np.tensordot(m[:3, :3], idx.astype(np.float64), axes=(1, 0)) + m[:3, 3][:, None, None]
    r = np.rint(pts).astype(np.int64)
    inside = np.all((r >= 0) & (r < np.asarray(labels.shape)[:, None, None]), axis=0)
    r = np.where(inside, r, 0)
    out = labels[r[0], r[1], r[2]]
    return np.where(inside, out, 0)


def write_preview(case: SimCase, path: Path, dpi: int = 70) -> Path:
    """Write the montage PNG (rows: sequences; columns: axial, coronal, sagittal).

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    point = focus_point(case)
    seqs = list(case.images)
    truth = dict(case.labels) if case.labels else {"brain": case.brain_mask}
    fig, axes = plt.subplots(len(seqs), 3, figsize=(9, 3 * len(seqs)), squeeze=False, facecolor="black")
    for r, seq in enumerate(seqs):
        vol = case.images[seq]
        for c, plane in enumerate(PLANES):
            ax = axes[r, c]
            img, idx = _plane_slice(vol.data, vol.affine, point, plane)
            sp = np.linalg.norm(vol.affine[:3, :3], axis=0)
            _, h_ax, v_ax = _slice_axes(vol.affine, plane)
            lo, hi = np.percentile(img, [0.5, 99.5]) if img.size else (0, 1)
            ax.imshow(img.T, cmap="gray", origin="lower", vmin=lo, vmax=hi, aspect=sp[v_ax] / sp[h_ax])
            for task, lab in truth.items():
                sl = _labels_on(idx, vol.affine, lab, case.label_affine) > 0
                if sl.any():
                    ax.contour(
                        sl.T.astype(float), levels=[0.5], colors=COLOURS.get(task, "white"), linewidths=0.7
                    )
            ax.set_axis_off()
            if c == 0:
                ax.set_title(
                    f"{seq}  {'x'.join(f'{s:.2g}' for s in sp)} mm", color="white", fontsize=9, loc="left"
                )
    handles = [Line2D([0], [0], color=COLOURS.get(t, "white"), label=t) for t in truth]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), facecolor="black", labelcolor="white")
    fig.suptitle(case.case_id, color="white")
    fig.tight_layout(rect=(0, 0.03, 1, 0.98))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor="black")
    plt.close(fig)
    return path
