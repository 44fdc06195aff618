"""Training patches straight from the simulator, without writing files.

`PatchStream` keeps a small pool of simulated heads (common grid), normalised exactly as inference
pre-processing does (`preprocess.normalize`: clip at the 0.5/99.5 percentiles and z-score inside the brain
mask), and cuts several patches from each before replacing it, so that a 2-core training loop is not starved
by the seconds a new head costs. Patches are cut by `train.data.sample_patch` (the same sampler as for cases
on disk): with probability ``lesion_prob`` the centre is a lesion voxel.

Example:
    >>> stream = PatchStream(tasks=["wmh"], sequences=["flair", "t1"], patch_size=(32, 32, 32))  # doctest: +SKIP
    >>> patch = next(iter(stream))  # doctest: +SKIP
    >>> patch["image"].shape, patch["label"].shape, patch["present"]  # doctest: +SKIP
    ((2, 32, 32, 32), (1, 32, 32, 32), array([ True,  True]))
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from neurolesion.errors import InputError
from neurolesion.registry import SEQUENCES, TASKS
from neurolesion.synth.case import SimCase, SynthConfig, simulate_case
from neurolesion.volume import Volume

if TYPE_CHECKING:
    from neurolesion.train.data import CaseArrays

log = logging.getLogger(__name__)

#: Simulator defaults for training: some domain randomisation on top of the physics.
TRAINING_CONFIG = SynthConfig(random_contrast_p=0.15)


def case_arrays(
    case: SimCase,
    tasks: Sequence[str],
    sequences: Sequence[str],
    rng: np.random.Generator | None = None,
    drop_prob: float = 0.0,
) -> CaseArrays:
    """A simulated case (common grid) as training arrays.

    Args:
        case: the simulated case.
        tasks: output tasks in channel order; ``brain`` gives the brain mask, others binary lesion masks.
        sequences: input channels in order; those missing from the case are zero-filled and flagged absent.
        rng: draws which sequences to drop (when drop_prob > 0).
        drop_prob: probability of dropping each present sequence (at least one is kept), to train
            robustness to missing inputs.

    Returns:
        `train.data.CaseArrays` with z-scored images.

    Raises:
        InputError: the case is not on one common grid.
    """
    from neurolesion.preprocess.normalize import normalize
    from neurolesion.train.data import CaseArrays

    brain = case.brain_mask > 0
    present = np.array([s in case.images for s in sequences], dtype=bool)
    if drop_prob > 0 and rng is not None and present.sum() > 1:
        drop = (rng.random(len(sequences)) < drop_prob) & present
        if drop.sum() == present.sum():
            drop[rng.choice(np.flatnonzero(present))] = False
        present &= ~drop
    channels = []
    for seq, here in zip(sequences, present, strict=True):
        if not here:
            channels.append(np.zeros(brain.shape, np.float32))
            continue
        vol = case.images[seq]
        if vol.shape != brain.shape:
            raise InputError(
                f"{case.case_id}: {seq} is on another grid; patches need SynthConfig(grid='common')"
            )
        channels.append(normalize(Volume(vol.array, vol.affine, seq), brain).data)
    labels = [brain if t == "brain" else case.labels[t] > 0 for t in tasks]
    lesion_ml = sum(r.volume_ml for r in case.records)
    spacing = next(iter(case.images.values())).spacing
    return CaseArrays(
        name=case.case_id,
        image=np.stack(channels).astype(np.float32),
        present=present,
        label=np.stack(labels).astype(np.uint8),
        brain=brain,
        spacing=spacing,
        lesion_count=len(case.records),
        lesion_volume_ml=float(lesion_ml),
    )


class PatchStream:
    """Endless stream of training patches from freshly simulated heads.

    Args:
        config: simulator configuration (default `TRAINING_CONFIG`); forced to the common grid.
        tasks: output tasks (label channels), e.g. ``["wmh", "cmb", "lacune", "epvs"]`` or ``["brain"]``.
        sequences: input channels (default: all six).
        patch_size: spatial patch size.
        lesion_prob: probability that a patch is centred on a lesion voxel.
        seed: stream seed (case seeds derive from it; DataLoader workers get distinct streams).
        patches_per_head: patches drawn per simulated head before it is replaced.
        pool_size: heads kept at once (patches mix heads).
        drop_prob: probability of dropping each sequence of a head (zero-filled, flagged absent).

    Yields:
        ``{"image": float32 (C, *patch), "label": uint8 (K, *patch), "present": bool (C,)}``.

    Raises:
        InputError: unknown task or sequence, or invalid sizes.
    """

    def __init__(
        self,
        config: SynthConfig | None = None,
        tasks: Sequence[str] = ("brain",),
        sequences: Sequence[str] | None = None,
        patch_size: Sequence[int] = (64, 64, 64),
        lesion_prob: float = 0.67,
        seed: int = 0,
        patches_per_head: int = 16,
        pool_size: int = 2,
        drop_prob: float = 0.0,
    ) -> None:
        unknown = [t for t in tasks if t not in TASKS] + [s for s in sequences or () if s not in SEQUENCES]
        if unknown:
            raise InputError(f"patch stream: unknown task or sequence {unknown}")
        if patches_per_head < 1 or pool_size < 1 or len(patch_size) != 3 or min(patch_size) < 1:
            raise InputError(
                f"patch stream: patches_per_head {patches_per_head}, pool_size {pool_size}, patch_size "
                f"{tuple(patch_size)}; expected positive counts and three positive sizes"
            )
        self.config = replace(config or TRAINING_CONFIG, grid="common")
        self.tasks = list(tasks)
        self.sequences = list(sequences) if sequences else list(SEQUENCES)
        self.patch_size = tuple(int(s) for s in patch_size)
        self.lesion_prob = float(lesion_prob)
        self.seed = int(seed)
        self.patches_per_head = int(patches_per_head)
        self.pool_size = int(pool_size)
        self.drop_prob = float(drop_prob)

    def _worker(self) -> tuple[int, int]:
        """(worker id, number of workers) inside a torch DataLoader, else (0, 1)."""
        try:
            from torch.utils.data import get_worker_info
        except ImportError:
            return 0, 1
        info = get_worker_info()
        return (0, 1) if info is None else (int(info.id), int(info.num_workers))

    def head(self, index: int) -> CaseArrays:
        """The `index`-th head of this stream (deterministic)."""
        case_seed = int(np.random.default_rng([self.seed, index]).integers(2**31))
        lesion_tasks = [t for t in self.tasks if t != "brain"]
        case = simulate_case(case_seed, lesion_tasks or ["brain"], self.sequences, self.config)
        rng = np.random.default_rng([self.seed, index, 1])
        return case_arrays(case, self.tasks, self.sequences, rng, self.drop_prob)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from neurolesion.train.data import sample_patch

        worker, n_workers = self._worker()
        rng = np.random.default_rng([self.seed, worker, 2])
        counter = worker
        pool: list[CaseArrays] = []
        drawn = 0
        while True:
            if len(pool) < self.pool_size or drawn >= self.patches_per_head:
                if len(pool) >= self.pool_size:
                    pool.pop(0)
                pool.append(self.head(counter))
                counter += n_workers
                drawn = 0
            case = pool[int(rng.integers(len(pool)))]
            drawn += 1
            yield sample_patch(case, rng, self.patch_size, self.lesion_prob)


def torch_dataset(stream: PatchStream) -> Any:
    """Wrap a stream as a torch ``IterableDataset`` (for a DataLoader with worker processes).

    Example:
        >>> loader = torch.utils.data.DataLoader(torch_dataset(stream), batch_size=2, num_workers=1)  # doctest: +SKIP
    """
    from torch.utils.data import IterableDataset

    class _Stream(IterableDataset):
        def __iter__(self) -> Iterator[dict[str, Any]]:
            return iter(stream)

    return _Stream()
