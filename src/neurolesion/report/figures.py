"""Figures of the report as RGB arrays and PNG bytes: overlay montages, lesion thumbnails, registration check.

Images are shown the way radiologists read them: axial slices in radiological convention (the patient's
right on the viewer's left, anterior at the top), with square pixels in mm whatever the acquisition grid
(the array is only permuted and flipped to RAS, never interpolated across slices, then in-plane pixels are
stretched to the finest spacing). Rendering is plain numpy plus one PNG encoder call, so a report with
hundreds of lesion thumbnails takes well under a second of drawing.

Example:
    >>> vol = Volume(np.random.default_rng(0).random((20, 20, 10)), np.eye(4))
    >>> lab = np.zeros((20, 20, 10), np.int32); lab[5:9, 5:9, 4:6] = 1
    >>> png = to_png(montage(vol, lab, (1.0, 0.2, 0.2), columns=2, count=4))
    >>> png[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import base64
import io

import numpy as np
from scipy import ndimage

from neurolesion.preprocess.orientation import reorient
from neurolesion.volume import Volume

Colour = tuple[float, float, float]

#: Overlay colour of each task's lesions (RGB in [0, 1]).
TASK_COLOURS: dict[str, Colour] = {
    "brain": (0.2, 0.8, 0.9),
    "wmh": (1.0, 0.85, 0.1),
    "cmb": (1.0, 0.2, 0.2),
    "lacune": (0.2, 0.6, 1.0),
    "epvs": (0.3, 1.0, 0.4),
    "ccm": (1.0, 0.4, 0.0),
    "tumor": (1.0, 0.2, 0.9),
}

_PALETTE = np.array(
    [(0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
     (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
     (170, 110, 40), (255, 250, 200), (128, 0, 0)],
    dtype=np.float64,
) / 255.0  # fmt: skip


def to_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) image with values in [0, 1] or uint8."""
    from matplotlib.image import imsave

    buffer = io.BytesIO()
    arr = np.asarray(rgb)
    imsave(buffer, arr if arr.dtype == np.uint8 else np.clip(arr, 0.0, 1.0), format="png")
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI for embedding a PNG in HTML.

    Example:
        >>> data_uri(b"abc")
        'data:image/png;base64,YWJj'
    """
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def ras(volume: Volume) -> Volume:
    """The volume permuted and flipped to RAS axes (exact, no interpolation)."""
    return reorient(volume, "RAS")


def intensity_window(data: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """Display window: the 1st and 99.5th percentiles of the (masked) non-zero intensities.

    Example:
        >>> intensity_window(np.arange(1, 1001.0))
        (10.99, 995.005)
    """
    values = data[mask] if mask is not None and mask.any() else data
    values = values[np.isfinite(values) & (values != 0)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [1.0, 99.5])
    return float(lo), float(max(hi, lo + 1e-6))


def axial_plane(slab: np.ndarray, spacing: tuple[float, float], order: int) -> np.ndarray:
    """One RAS axial section (X, Y) as a display image: radiological orientation, square pixels.

    Args:
        slab: (X, Y) section of a RAS-oriented array.
        spacing: mm along X and Y.
        order: interpolation order of the in-plane stretch (0 for labels).
    """
    image = slab.T[::-1, ::-1]  # rows: anterior to posterior; columns: patient right to left
    finest = min(spacing)
    zoom = (spacing[1] / finest, spacing[0] / finest)
    if np.allclose(zoom, 1.0):
        return image
    return ndimage.zoom(image, zoom, order=order, mode="nearest", grid_mode=True)


def overlay(gray: np.ndarray, labels: np.ndarray, colour: Colour, alpha: float = 0.35) -> np.ndarray:
    """RGB image: `gray` in [0, 1] with `labels` > 0 tinted in `colour` and outlined in full colour.

    Example:
        >>> overlay(np.zeros((3, 3)), np.eye(3, dtype=int), (1.0, 0.0, 0.0))[1, 1].tolist()
        [1.0, 0.0, 0.0]
    """
    rgb = np.repeat(np.clip(gray, 0.0, 1.0)[..., None], 3, axis=-1)
    inside = labels > 0
    edge = inside & ~ndimage.binary_erosion(inside)
    tint = np.asarray(colour)
    rgb[inside] = (1 - alpha) * rgb[inside] + alpha * tint
    rgb[edge] = tint
    return rgb


def montage(
    image: Volume,
    labels: np.ndarray | None,
    colour: Colour,
    *,
    columns: int = 4,
    count: int = 12,
    alpha: float = 0.35,
) -> np.ndarray:
    """Axial overlay montage: `count` sections evenly spread over the lesions (or the whole image).

    Args:
        image: single-channel image on the labels' grid.
        labels: (X, Y, Z) label map on the image's grid, or None for the image alone.
        colour: overlay colour.
        columns: tiles per row.
        count: number of sections (fewer when the volume has fewer).
        alpha: opacity of the tint inside the labels (0: outlines only).

    Returns:
        (H, W, 3) float RGB in [0, 1].
    """
    vol = ras(image)
    lab = ras(image.with_array(np.zeros(image.shape) if labels is None else labels)).data
    data = vol.data
    lo, hi = intensity_window(data)
    zs = np.nonzero(lab.any(axis=(0, 1)))[0]
    if zs.size == 0:
        zs = np.nonzero((data != 0).any(axis=(0, 1)))[0]
    if zs.size == 0:
        zs = np.arange(data.shape[2])
    picks = np.unique(np.linspace(zs[0], zs[-1], min(count, zs.size)).round().astype(int))
    spacing = (vol.spacing[0], vol.spacing[1])
    crop = _content_box(data, margin=3)
    tiles = [
        overlay(
            axial_plane((data[crop][:, :, k] - lo) / (hi - lo), spacing, 1),
            axial_plane(lab[crop][:, :, k], spacing, 0),
            colour,
            alpha,
        )
        for k in picks
    ]
    return tile(tiles, columns)


def _content_box(data: np.ndarray, margin: int) -> tuple[slice, slice]:
    """In-plane (X, Y) box around the non-zero voxels of any section, `margin` voxels wider."""
    box = []
    for axis in (0, 1):
        other = tuple(a for a in range(3) if a != axis)
        nz = np.nonzero((data != 0).any(axis=other))[0]
        lo, hi = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, data.shape[axis])
        box.append(slice(max(lo - margin, 0), min(hi + margin, data.shape[axis])))
    return (box[0], box[1])


def tile(images: list[np.ndarray], columns: int, gap: int = 2) -> np.ndarray:
    """Arrange equally shaped RGB images in a grid with black gaps.

    Example:
        >>> tile([np.ones((2, 3, 3))] * 3, columns=2, gap=1).shape
        (5, 7, 3)
    """
    h, w = images[0].shape[:2]
    rows = -(-len(images) // columns)
    cols = min(columns, len(images))
    out = np.zeros((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3))
    for n, img in enumerate(images):
        r, c = divmod(n, columns)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = img
    return out


def lesion_thumbnails(
    image: Volume, labels: np.ndarray, colour: Colour, *, field_mm: float = 40.0, pixels: int = 96
) -> dict[int, np.ndarray]:
    """One axial thumbnail per lesion id: the section with the lesion's largest area, centred on it.

    Args:
        image: single-channel image on the labels' grid.
        labels: (X, Y, Z) lesion ids.
        colour: outline colour.
        field_mm: minimum field of view (grows to 1.5x the lesion's extent).
        pixels: output size (square).

    Returns:
        lesion id -> (pixels, pixels, 3) RGB in [0, 1].
    """
    vol = ras(image)
    lab = np.rint(ras(image.with_array(labels)).data).astype(np.int64)
    data = vol.data
    lo, hi = intensity_window(data)
    sx, sy = vol.spacing[0], vol.spacing[1]
    out: dict[int, np.ndarray] = {}
    for n, box in enumerate(ndimage.find_objects(lab)):
        if box is None:
            continue
        lesion_id = n + 1
        mask = lab[box] == lesion_id
        k = box[2].start + int(mask.sum(axis=(0, 1)).argmax())
        cx, cy = ((s.start + s.stop - 1) / 2 for s in box[:2])
        half = (
            max(field_mm, 1.5 * max((box[0].stop - box[0].start) * sx, (box[1].stop - box[1].start) * sy)) / 2
        )
        # sample a square field in mm around the lesion centre, nearest neighbour for labels
        grid = np.linspace(-half, half, pixels)
        xs = np.clip(np.rint(cx - grid / sx).astype(int), 0, data.shape[0] - 1)  # radiological: right first
        ys = np.clip(np.rint(cy - grid / sy).astype(int), 0, data.shape[1] - 1)  # anterior first
        gray = (data[np.ix_(xs, ys, [k])][..., 0].T - lo) / (hi - lo)
        ring = lab[np.ix_(xs, ys, [k])][..., 0].T == lesion_id
        out[lesion_id] = overlay(gray, ring, colour, alpha=0.0)
    return out


def registration_figure(reference: Volume, lobe: np.ndarray) -> np.ndarray:
    """Registration check: axial, coronal and sagittal sections of `reference` with the warped lobe outlines.

    Args:
        reference: single-channel reference image.
        lobe: `Lobe` code map on the reference grid (from the atlas registration).

    Returns:
        (H, W, 3) uint8 RGB.
    """
    vol = ras(reference)
    lab = np.rint(ras(reference.with_array(lobe)).data).astype(np.int64)
    data = vol.data
    lo, hi = intensity_window(data)
    inside = np.argwhere(lab > 0)
    centre = inside.mean(axis=0).round().astype(int) if inside.size else np.array(data.shape) // 2
    sx, sy, sz = vol.spacing
    views = [
        (data[:, :, centre[2]], lab[:, :, centre[2]], (sx, sy)),
        (data[:, centre[1], :], lab[:, centre[1], :], (sx, sz)),
        (data[centre[0], :, :], lab[centre[0], :, :], (sy, sz)),  # sagittal: anterior on the left
    ]
    tiles = []
    for gray, codes, spacing in views:
        g = axial_plane((gray - lo) / (hi - lo), spacing, 1)
        c = axial_plane(codes, spacing, 0)
        rgb = np.repeat(np.clip(g, 0, 1)[..., None], 3, axis=-1)
        edge = (c > 0) & (ndimage.grey_erosion(c, size=3) != ndimage.grey_dilation(c, size=3))
        rgb[edge] = _PALETTE[c[edge] % len(_PALETTE)]
        tiles.append(rgb)
    height = max(t.shape[0] for t in tiles)
    padded = [np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    return (np.concatenate(padded, axis=1) * 255).round().astype(np.uint8)
