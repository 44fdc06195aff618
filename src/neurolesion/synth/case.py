"""One simulated case: a new head, its lesions, every sequence, acquisition realism and the exact truth.

Order of operations (truth stays exact): random head on the working grid -> lesions painted on the working
grid -> tissue properties -> contrasts -> acquisition (bias, blur, ghosts, sampling, Gibbs ringing, noise)
-> one geometric transform per output grid, applied to images (linear) and label maps (nearest neighbour)
alike.

Example:
    >>> case = simulate_case(0, ["wmh"], ["flair", "t1"])  # doctest: +SKIP
    >>> case.write(Path("out/case_0000"))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from neurolesion.anatomy.labels import Region, Tissue
from neurolesion.anatomy.template import Anatomy, downsample, load_anatomy
from neurolesion.errors import InputError
from neurolesion.io.case import REFERENCE_ORDER
from neurolesion.registry import SEQUENCES, TASKS, expand_tasks
from neurolesion.synth import acquisition as acqmod
from neurolesion.synth import contrast, visibility
from neurolesion.synth.deform import HeadConfig, random_head, upsample
from neurolesion.synth.head import Head
from neurolesion.synth.lesions.base import LesionRecord, LesionSet
from neurolesion.volume import Volume

log = logging.getLogger(__name__)

#: Recorded in every case.json: a seed gives the same case only under the same simulator version. 2: white-
#: matter damage no longer carries white matter past grey matter that the jitter put behind it (see
#: `contrast.damage_white_matter`); version 1 (no field in case.json) is every data set simulated before.
SIMULATOR_VERSION = 2

#: The per-case (low, high) ranges of `SynthConfig` and the bounds each must lie within.
RANGE_FIELDS: dict[str, tuple[float, float]] = {
    "lesion_conspicuity": (0.0, 2.0),
    "grey_white_contrast": (0.0, 2.0),
    "white_matter_damage": (0.0, 2.0),
    "flair_grey_white_ratio": (0.5, 2.0),
}
#: Ranges that may be None (the knob is off).
OPTIONAL_RANGES: frozenset[str] = frozenset({"flair_grey_white_ratio"})

#: Lesion generator modules by task (imported lazily); `mimics` inserts look-alikes that are not lesions.
LESION_MODULES: dict[str, str] = {
    "tumor": "neurolesion.synth.lesions.tumor",
    "ccm": "neurolesion.synth.lesions.ccm",
    "wmh": "neurolesion.synth.lesions.wmh",
    "lacune": "neurolesion.synth.lesions.lacune",
    "epvs": "neurolesion.synth.lesions.epvs",
    "cmb": "neurolesion.synth.lesions.cmb",
    "mimics": "neurolesion.synth.lesions.mimics",
}
#: Tasks whose label map is a lesion instance map (all but brain).
LESION_TASKS: tuple[str, ...] = tuple(t for t in TASKS if t != "brain")

Generator = Callable[..., LesionSet]


@dataclass(frozen=True)
class SynthConfig:
    """Everything random about a simulated case; stored in case.json.

    Attributes:
        field_strengths: tesla values drawn from (1.5 and/or 3.0).
        spacing: voxel size (mm) of the common output grid.
        grid: "common" (every sequence and label map on one grid) or "native" (each sequence on its own
            acquisition grid, label maps on the reference sequence's grid).
        working_downsample: 1 for the 1 mm working grid, 2 for a 2 mm grid (fast tests).
        random_contrast_p: probability that a sequence gets random intensities (domain randomisation).
        property_jitter: log-normal spread of the per-case tissue properties.
        lesion_conspicuity: (low, high) factor between white matter (0) and the tabulated gliotic lesion
            (1) drawn per case for WMH, lacune rims and oedema, measured from the (damaged) white matter. The
            floor of 0.5 keeps every labelled lesion visible: with 0.3 and white-matter damage some cases
            held 35 ml of WMH at zero FLAIR contrast, which no rater would have drawn.
        grey_white_contrast: (low, high) factor between white matter (0) and the tabulated grey matter (1)
            drawn per case for every grey-matter code (scanner and sequence variation of GM/WM contrast).
        white_matter_damage: (low, high) factor between healthy white matter (0) and the WMH tissue (1)
            drawn per case for normal-appearing white matter (diffuse damage in MS and small vessel disease).
        flair_grey_white_ratio: (low, high) FLAIR cortex / white-matter signal ratio drawn per case and
            imposed on the FLAIR look-up table (`contrast.set_grey_white_ratio`); None keeps the ratio the
            tissue properties give, which can leave the cortex no brighter than white matter.
        mimics_p: probability of inserting mimics (calcification, flow voids, enhancing sulcal veins) when a
            task of `mimic_tasks` is simulated.
        mimic_tasks: the tasks whose cases get mimics: the susceptibility tasks by default; add tumor so
            that post-contrast T1 shows enhancing sulcal veins (with ``lesion_params.mimics.enhancing_fraction``).
        head: head randomisation ranges.
        acquisition: acquisition ranges.
        lesion_params: task -> keyword arguments for its generator's ``insert``.
        label_visibility: task -> the sequence a rater draws it on; an instance of that task whose
            detectability on that image (contrast-to-noise ratio x sqrt(voxels / voxels per resolution
            element), `neurolesion.synth.visibility`) is below ``min_label_detectability`` is left out of the
            label map (its case.json record says ``"visible": false``). Applied when the sequence is
            simulated and lies on the label grid.
        min_label_detectability: the smallest detectability a rater would still see (Rose's criterion puts
            it at 3-5; 0 labels every lesion).
    """

    field_strengths: tuple[float, ...] = (1.5, 3.0)
    spacing: float = 1.0
    grid: str = "common"
    working_downsample: int = 1
    random_contrast_p: float = 0.0
    property_jitter: float = 0.06
    lesion_conspicuity: tuple[float, float] = (0.5, 1.0)
    grey_white_contrast: tuple[float, float] = (0.2, 1.0)
    white_matter_damage: tuple[float, float] = (0.0, 0.3)
    flair_grey_white_ratio: tuple[float, float] | None = None
    mimics_p: float = 0.7
    mimic_tasks: tuple[str, ...] = ("cmb", "ccm")
    head: HeadConfig = field(default_factory=HeadConfig)
    acquisition: acqmod.AcquisitionConfig = field(default_factory=acqmod.AcquisitionConfig)
    lesion_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    label_visibility: Mapping[str, str] = field(default_factory=lambda: {"wmh": "flair"})
    min_label_detectability: float = 3.0

    def __post_init__(self) -> None:
        bad = [f for f in self.field_strengths if f not in (1.5, 3.0)]
        if not self.field_strengths or bad:
            raise InputError(
                f"synth config: field_strengths {self.field_strengths}; expected values from 1.5, 3.0"
            )
        if not 0.2 <= self.spacing <= 4.0:
            raise InputError(f"synth config: spacing {self.spacing} mm; expected 0.2-4 mm")
        if self.grid not in ("common", "native"):
            raise InputError(f"synth config: grid {self.grid!r}; expected 'common' or 'native'")
        if self.working_downsample not in (1, 2, 3, 4):
            raise InputError(f"synth config: working_downsample {self.working_downsample}; expected 1-4")
        for name, (floor, ceiling) in RANGE_FIELDS.items():
            pair = getattr(self, name)
            if pair is None and name in OPTIONAL_RANGES:
                continue
            if pair is None or len(pair) != 2 or not floor <= pair[0] <= pair[1] <= ceiling:
                raise InputError(
                    f"synth config: {name} {pair}; expected [low, high] with {floor:g} <= low <= high <= {ceiling:g}"
                )
        for name in ("random_contrast_p", "mimics_p"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise InputError(f"synth config: {name} {v}; expected a probability in [0, 1]")
        bad_vis = {
            t: q for t, q in self.label_visibility.items() if t not in LESION_MODULES or q not in SEQUENCES
        }
        if bad_vis:
            raise InputError(
                f"synth config: label_visibility {bad_vis}; expected lesion tasks from {list(LESION_MODULES)} "
                f"mapped to sequences from {list(SEQUENCES)}"
            )
        if not 0.0 <= self.min_label_detectability <= 20.0:
            raise InputError(
                f"synth config: min_label_detectability {self.min_label_detectability}; expected 0-20"
            )
        bad_mimic = [t for t in self.mimic_tasks if t not in LESION_TASKS]
        if bad_mimic:
            raise InputError(
                f"synth config: mimic_tasks {bad_mimic}; expected lesion tasks from {list(LESION_TASKS)}"
            )
        unknown = set(self.lesion_params) - set(LESION_MODULES)
        if unknown:
            raise InputError(
                f"synth config: lesion_params for {sorted(unknown)}; expected keys from {list(LESION_MODULES)}"
            )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the inverse of `from_dict`)."""
        d = asdict(self)
        d["lesion_params"] = {k: dict(v) for k, v in self.lesion_params.items()}
        d["label_visibility"] = dict(self.label_visibility)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> SynthConfig:
        """Build and validate from a plain mapping (YAML / JSON).

        Raises:
            InputError: unknown keys or values out of range (naming `source`).
        """
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InputError(
                f"{source}: unknown synth config keys {sorted(unknown)}; expected some of {sorted(known)}"
            )
        kw: dict[str, Any] = dict(data)
        for key, sub in (("head", HeadConfig), ("acquisition", acqmod.AcquisitionConfig)):
            if key in kw and not isinstance(kw[key], sub):
                kw[key] = _sub_config(sub, kw[key], f"{source}: {key}")
        for key in ("field_strengths", *RANGE_FIELDS):
            if kw.get(key) is not None:
                try:
                    kw[key] = tuple(float(v) for v in kw[key])
                except (TypeError, ValueError):
                    raise InputError(f"{source}: {key} {kw[key]!r}; expected a list of numbers") from None
        if "mimic_tasks" in kw:
            kw["mimic_tasks"] = tuple(str(t) for t in kw["mimic_tasks"])
        try:
            return cls(**kw)
        except TypeError as exc:
            raise InputError(f"{source}: {exc}") from None

    @classmethod
    def from_yaml(cls, path: Path) -> SynthConfig:
        """Load and validate a YAML file.

        Raises:
            InputError: unreadable file, not a mapping, or invalid values.
        """
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"{path}: cannot read synth config: {exc}") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: synth config must be a mapping of keys to values")
        return cls.from_dict(data, str(path))


def _sub_config(cls: Any, data: Any, source: str) -> Any:
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: expected a mapping, got {data!r}")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise InputError(f"{source}: unknown keys {sorted(unknown)}; expected some of {sorted(known)}")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**kw)


@dataclass
class SimCase:
    """A simulated case.

    Attributes:
        case_id: folder name.
        images: sequence -> Volume (float32 magnitude).
        labels: task -> (X, Y, Z) int32 instance map (0 background) on the label grid.
        brain_mask: (X, Y, Z) uint8 brain mask on the label grid.
        regions: (X, Y, Z) uint8 `Region` codes on the label grid.
        anatomy: (X, Y, Z) uint8 tissue codes (anatomy and lesion tissue) on the label grid.
        label_affine: 4x4 affine of the label grid.
        records: every inserted lesion; ``centre_vox`` on the label grid, ``extra`` adds task, centre_mm
            (RAS) and centre_vox_working.
        acquisition: sequence -> sequence parameters and acquisition protocol.
        info: seed, tasks, grid, reference, field strength, age factor, config.
    """

    case_id: str
    images: dict[str, Volume]
    labels: dict[str, np.ndarray]
    brain_mask: np.ndarray
    regions: np.ndarray
    anatomy: np.ndarray
    label_affine: np.ndarray
    records: list[LesionRecord]
    acquisition: dict[str, dict[str, Any]]
    info: dict[str, Any]

    def case_json(self) -> dict[str, Any]:
        """The content of case.json."""
        lesions = [{"task": r.extra.get("task", ""), **asdict(r)} for r in self.records]
        return {**self.info, "case_id": self.case_id, "lesions": lesions, "acquisition": self.acquisition}

    def write(self, folder: Path) -> list[Path]:
        """Write the case folder atomically (a temporary folder renamed at the end).

        Returns:
            The written files.
        """
        import nibabel as nib

        folder = Path(folder)
        tmp = folder.with_name(folder.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)

        def save(arr: np.ndarray, affine: np.ndarray, name: str, on_disk: type | None = None) -> None:
            img = nib.Nifti1Image(arr, affine)
            if on_disk is not None:
                img.set_data_dtype(on_disk)  # scaled integers: half the size, far faster to compress
            img.header.set_xyzt_units("mm")
            img.set_qform(affine, code=1)
            img.set_sform(affine, code=1)
            nib.save(img, str(tmp / name))

        for seq, vol in self.images.items():
            save(vol.data.astype(np.float32), vol.affine, f"{seq}.nii.gz", np.int16)
        save(self.brain_mask.astype(np.uint8), self.label_affine, "brain_mask.nii.gz")
        for task, lab in self.labels.items():
            dtype = np.int16 if lab.max(initial=0) < np.iinfo(np.int16).max else np.int32
            save(lab.astype(dtype), self.label_affine, f"{task}_labels.nii.gz")
        save(self.anatomy.astype(np.uint8), self.label_affine, "anatomy.nii.gz")
        save(self.regions.astype(np.uint8), self.label_affine, "regions.nii.gz")
        (tmp / "case.json").write_text(json.dumps(self.case_json(), indent=1, default=_json_default))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        return sorted(folder.iterdir())


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@lru_cache(maxsize=4)
def working_anatomy(factor: int) -> Anatomy:
    """The template anatomy on the working grid (1 mm, or coarser by `factor`), cached per process."""
    return downsample(load_anatomy(), factor)


def load_generator(task: str) -> Generator:
    """The ``insert`` function of a task's lesion module (imported on first use).

    Raises:
        InputError: no lesion generator for `task`.
    """
    if task not in LESION_MODULES:
        raise InputError(f"no lesion generator for task {task!r}; expected one of {list(LESION_MODULES)}")
    try:
        module = importlib.import_module(LESION_MODULES[task])
    except ModuleNotFoundError as exc:
        raise InputError(f"lesion generator {LESION_MODULES[task]} is not available: {exc}") from None
    insert: Generator = module.insert
    return insert


def insert_lesions(
    head: Head,
    tasks: Sequence[str],
    rng: np.random.Generator,
    config: SynthConfig,
    generators: Mapping[str, Generator] | None = None,
) -> tuple[dict[str, np.ndarray], list[LesionRecord]]:
    """Run the lesion generators of `tasks` (plus mimics) on the head, in a fixed order.

    A later generator may paint over an earlier lesion; the earlier instance map loses those voxels, so every
    instance map matches the final tissue codes exactly, and record volumes are recomputed.

    Returns:
        (task -> int32 instance map, records with ``extra["task"]`` set).
    """
    order = [t for t in LESION_MODULES if t in tasks]
    if set(tasks) & set(config.mimic_tasks) and rng.uniform() < config.mimics_p:
        order.append("mimics")
    maps: dict[str, np.ndarray] = {}
    records: list[LesionRecord] = []
    voxel_ml = float(np.prod(head.spacing)) / 1000.0
    for task in order:
        insert = (generators or {}).get(task) or load_generator(task)
        before = head.labels.copy()
        child = np.random.default_rng(int(rng.integers(2**63)))
        lesion_set = insert(head, child, **dict(config.lesion_params.get(task, {})))
        changed = head.labels != before
        for other in maps.values():
            other[changed & (other > 0)] = 0
        if task == "mimics":
            continue
        maps[task] = np.asarray(lesion_set.instances, dtype=np.int32)
        for r in lesion_set.records:
            r.extra["task"] = task
            records.append(r)
    for task in tasks:
        maps.setdefault(task, np.zeros(head.labels.shape, np.int32))
    counts = {t: np.bincount(m.reshape(-1)) for t, m in maps.items()}
    kept = []
    for r in records:
        c = counts[str(r.extra["task"])]
        if r.id >= len(c) or c[r.id] == 0:
            continue
        r.volume_ml = float(c[r.id] * voxel_ml)
        kept.append(r)
    return maps, kept


def simulate_case(
    seed: int,
    tasks: Sequence[str],
    sequences: Sequence[str] | None = None,
    config: SynthConfig | None = None,
    *,
    generators: Mapping[str, Generator] | None = None,
) -> SimCase:
    """Simulate one case. Same seed and config, same arrays.

    Args:
        seed: case seed.
        tasks: task names or groups (csvd, all); `brain` needs no lesion.
        sequences: registry sequence names; all six when None.
        config: ranges (default `SynthConfig()`).
        generators: task -> insert function overriding the lesion modules (tests).

    Returns:
        The case (images, instance maps, masks, records, acquisition parameters).

    Raises:
        InputError: unknown task or sequence.
    """
    cfg = config or SynthConfig()
    task_list = expand_tasks(tasks)
    seqs = list(sequences) if sequences else list(SEQUENCES)
    unknown = [s for s in seqs if s not in SEQUENCES]
    if unknown:
        raise InputError(f"unknown sequence(s) {unknown}; expected names from {list(SEQUENCES)}")
    seqs = [s for s in SEQUENCES if s in seqs]
    rng = np.random.default_rng(seed)
    anat = working_anatomy(cfg.working_downsample)
    head = random_head(anat, rng, cfg.head)
    lesion_tasks = [t for t in task_list if t in LESION_TASKS]
    maps, records = insert_lesions(head, lesion_tasks, rng, cfg, generators)
    field_t = float(rng.choice(cfg.field_strengths))
    props = contrast.jittered_properties(field_t, rng, cfg.property_jitter)
    props = contrast.vary_grey_white_contrast(props, rng, cfg.grey_white_contrast)
    props = contrast.damage_white_matter(props, rng, cfg.white_matter_damage)
    props = contrast.vary_conspicuity(props, rng, cfg.lesion_conspicuity)
    texture = _texture(head.labels.shape, rng, float(np.mean(head.spacing)))
    brain = head.brain_mask()
    work_spacing = head.spacing

    reference = next(s for s in REFERENCE_ORDER if s in seqs)
    grids: dict[str, tuple[tuple[int, int, int], np.ndarray]] = {}
    images: dict[str, Volume] = {}
    acq_info: dict[str, dict[str, Any]] = {}
    field_ppm: np.ndarray | None = None
    head_mm = _head_points(head, rng) if cfg.grid == "native" else np.zeros((3, 1))
    for seq in seqs:
        params = contrast.random_sequence(seq, field_t, rng)
        lut_info: dict[str, float] = {}  # what was imposed on the physics' table, for case.json
        if rng.uniform() < cfg.random_contrast_p:
            lut = contrast.random_table(rng)
            params = replace(params, random_intensity=True)
        else:
            lut = contrast.signal_table(params, props)
            if seq == "flair" and cfg.flair_grey_white_ratio is not None:
                ratio = float(rng.uniform(*cfg.flair_grey_white_ratio))
                lut = contrast.set_grey_white_ratio(lut, ratio)
                lut_info["grey_white_ratio"] = ratio
        img: np.ndarray = contrast.render(head.labels, lut, props["texture"], texture)
        if seq in contrast.SUSCEPTIBILITY_SEQUENCES:
            if field_ppm is None:
                field_ppm = contrast.field_map(props["chi"][head.labels], work_spacing)
            img = contrast.dephase(img, field_ppm, params)
        acq = acqmod.random_acquisition(seq, rng, cfg.acquisition)
        img = acqmod.degrade(img, acq, work_spacing, rng)
        sigma = acqmod.noise_sigma(img, brain, acq.snr)
        if cfg.grid == "native":
            shape, affine = acqmod.native_grid(acq, head_mm, rng, cfg.acquisition)
            grids[seq] = (shape, affine)
            sp = tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))
            # sample no finer than the working grid, then interpolate in-plane (separable, cheap)
            inter = acqmod.shape_for_spacing(
                shape, sp, [max(a, w) for a, w in zip(sp, work_spacing, strict=True)]
            )
            inter_affine = acqmod.box_affine(affine, shape, inter)
            img = acqmod.resample(img, acqmod.grid_coordinates(inter, inter_affine, head.affine), inter)
            img = acqmod.gibbs_ringing(img, acq.gibbs_kept, (0, 1))  # native axes 0, 1: in-plane
            inter_spacing = tuple(float(v) for v in np.linalg.norm(inter_affine[:3, :3], axis=0))
            final = shape
        else:
            img, inter_spacing = acqmod.sample_along_working_axes(img, acq, work_spacing)
            final = acqmod.shape_for_spacing(brain.shape, work_spacing, [cfg.spacing] * 3)
            affine = acqmod.box_affine(head.affine, brain.shape, final)
        if seq == "swi":
            lowpass = acqmod.resize(contrast.swi_lowpass(img, inter_spacing), img.shape, order=1)  # type: ignore[arg-type]
            mag = contrast.swi_combine(acqmod.add_complex_noise(img, sigma, rng), lowpass)
        else:
            if cfg.grid == "native":
                img = acqmod.resize(img, final, order=1)
            mag = np.abs(acqmod.add_complex_noise(img, sigma, rng))
        mag = acqmod.resize(mag, final, order=1)
        sample = mag.reshape(-1)[:: max(mag.size // 200000, 1)]
        top = float(np.percentile(sample[sample > 0], 99)) if (sample > 0).any() else 1.0
        images[seq] = Volume(mag * (1000.0 / max(top, 1e-6)), affine, name=seq, meta={"sequence": seq})
        acq_info[seq] = {**params.as_dict(), **acq.as_dict(), **lut_info}

    if cfg.grid == "native":
        lab_shape, lab_affine = grids[reference]
        index = acqmod.nearest_index(
            acqmod.grid_coordinates(lab_shape, lab_affine, head.affine), head.labels.shape
        )

        def to_grid(a: np.ndarray) -> np.ndarray:
            return acqmod.gather(a, index, lab_shape)

    else:
        lab_affine = next(iter(images.values())).affine

        def to_grid(a: np.ndarray) -> np.ndarray:
            return _to_common(a, work_spacing, cfg.spacing)

    labels_out = {t: to_grid(maps[t]) for t in lesion_tasks}
    anatomy_out = to_grid(head.labels)
    hidden = _hide_invisible(
        labels_out, images, acq_info, anatomy_out, to_grid(brain.astype(np.uint8)) > 0, cfg
    )
    to_label_vox = np.linalg.inv(lab_affine) @ head.affine
    for r in records:
        work = np.append(np.asarray(r.centre_vox, float), 1.0)
        r.extra["centre_mm"] = [round(float(v), 2) for v in (head.affine @ work)[:3]]
        r.extra["centre_vox_working"] = [round(float(v), 2) for v in work[:3]]
        lab = (to_label_vox @ work)[:3]
        r.centre_vox = (round(float(lab[0]), 2), round(float(lab[1]), 2), round(float(lab[2]), 2))
        r.extra.setdefault("region_code", int(_region_code(r.region)))
        if r.id in hidden.get(str(r.extra["task"]), ()):
            r.extra["visible"] = False
    info = {
        "simulator_version": SIMULATOR_VERSION,
        "seed": int(seed),
        "tasks": task_list,
        "sequences": seqs,
        "grid": cfg.grid,
        "reference": reference,
        "field_strength": field_t,
        "age_factor": round(head.age_factor, 4),
        "asymmetry": head.asymmetry,
        "label_grid": {"shape": list(to_grid(head.regions).shape), "affine": lab_affine.tolist()},
        "working_grid": {"shape": list(head.labels.shape), "affine": head.affine.tolist()},
        "config": cfg.as_dict(),
    }
    return SimCase(
        case_id=f"case_{seed:06d}",
        images=images,
        labels=labels_out,
        brain_mask=to_grid(brain.astype(np.uint8)),
        regions=to_grid(head.regions),
        anatomy=anatomy_out,
        label_affine=lab_affine,
        records=records,
        acquisition=acq_info,
        info=info,
    )


def _hide_invisible(
    labels: dict[str, np.ndarray],
    images: Mapping[str, Volume],
    acquisition: Mapping[str, Mapping[str, Any]],
    anatomy: np.ndarray,
    brain: np.ndarray,
    cfg: SynthConfig,
) -> dict[str, list[int]]:
    """Zero, in place, the instances a rater could not see (``cfg.label_visibility``); their ids per task."""
    if cfg.min_label_detectability <= 0:
        return {}
    tissue = brain & ~np.isin(anatomy, (int(Tissue.VENTRICLE), int(Tissue.CSF)))
    hidden: dict[str, list[int]] = {}
    for task, seq in cfg.label_visibility.items():
        if task not in labels or seq not in images or images[seq].shape != labels[task].shape:
            continue
        r = visibility.voxels_per_element(acquisition[seq]["spacing"], images[seq].spacing)
        ids = visibility.invisible_instances(
            images[seq].data, labels[task], tissue, cfg.min_label_detectability, r
        )
        if ids:
            labels[task][np.isin(labels[task], ids)] = 0
            hidden[task] = ids
    return hidden


def _region_code(name: str) -> int:
    try:
        return int(Region[name.upper()])
    except KeyError:
        return int(Region.NONE)


def _texture(shape: tuple[int, ...], rng: np.random.Generator, spacing: float) -> np.ndarray:
    """Zero-mean unit-variance random field shared by all sequences: fine grain (about 1.5 mm) plus
    slow variation (about 1 cm, like tracts and caps), equal parts."""
    fine = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), 1.0 / spacing)
    nodes = tuple(max(int(n * spacing / 10.0), 2) for n in shape)
    coarse = upsample(rng.standard_normal(nodes, dtype=np.float32), shape)
    t = fine / max(float(fine.std()), 1e-6) + coarse / max(float(coarse.std()), 1e-6)
    t /= max(float(t.std()), 1e-6)
    return t


def _head_points(head: Head, rng: np.random.Generator) -> np.ndarray:
    """(3, N) RAS mm of a random sample of head voxels (for sizing acquisition grids)."""
    idx = np.argwhere(head.labels > 0)
    if len(idx) > 20000:
        idx = idx[rng.choice(len(idx), 20000, replace=False)]
    return head.affine[:3, :3] @ idx.T.astype(np.float64) + head.affine[:3, 3:4]


def _to_common(a: np.ndarray, work: tuple[float, float, float], spacing: float) -> np.ndarray:
    """Label map from the working grid to the common grid (nearest neighbour)."""
    shape = acqmod.shape_for_spacing(a.shape, work, (spacing,) * 3)
    if shape == a.shape:
        return a
    return acqmod.resize(a, shape, order=0).astype(a.dtype)
