"""The single source of truth for names: sequences, tasks and their labels.

Every other module (CLI choices, BIDS suffixes, model cards, output file names) reads from here.

Example:
    >>> from neurolesion.registry import TASKS, tasks_for_sequences
    >>> TASKS["cmb"].required
    (('t2star', 'swi'),)
    >>> [t.name for t in tasks_for_sequences({"flair", "t1"})]
    ['brain', 'wmh', 'lacune', 'epvs']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from neurolesion.errors import InputError


@dataclass(frozen=True)
class Sequence:
    """An MR sequence the project knows.

    Attributes:
        name: short key used everywhere (CLI flags, file names).
        title: human-readable name.
        bids_suffix: BIDS suffix (with entity for contrast-enhanced T1).
    """

    name: str
    title: str
    bids_suffix: str


SEQUENCES: dict[str, Sequence] = {
    s.name: s
    for s in (
        Sequence("t1", "T1-weighted", "T1w"),
        Sequence("t1c", "T1-weighted with gadolinium", "ce-*_T1w"),
        Sequence("t2", "T2-weighted", "T2w"),
        Sequence("flair", "T2-FLAIR", "FLAIR"),
        Sequence("t2star", "T2*-weighted gradient echo", "T2starw"),
        Sequence("swi", "Susceptibility-weighted", "swi"),
    )
}


@dataclass(frozen=True)
class Task:
    """A segmentation task.

    Attributes:
        name: key (CLI `--task`, output file prefix `<name>_labels.nii.gz`).
        title: human-readable name.
        required: groups of sequences; the task runs when every group has at least one sequence present.
        optional: sequences used when present.
        lesion_types: the `type` values its lesions can have in lesions.csv.
        min_size_mm3: smallest lesion kept by post-processing (clinical definition of the marker).
        extra_axial: its lesions may lie against or outside the brain's surface (meningiomas, schwannomas in
            the internal auditory canal, cortical metastases): post-processing judges a candidate by its own
            voxels instead of dropping one whose surroundings lie mostly outside the brain mask
            (`neurolesion.infer.postprocess.postprocess`): `segment` passes the brain less its CSF
            (`neurolesion.preprocess.prepare.Prepared.tissue`), and a candidate is kept when its voxels
            inside the brain mask are mostly that tissue, not the CSF with its enhancing vessels, whatever
            lies outside the mask.
    """

    name: str
    title: str
    required: tuple[tuple[str, ...], ...]
    optional: tuple[str, ...] = ()
    lesion_types: tuple[str, ...] = ()
    min_size_mm3: float = 0.0
    extra_axial: bool = False

    def runnable(self, present: Iterable[str]) -> bool:
        """True when the sequences `present` satisfy every required group."""
        have = set(present)
        return all(have.intersection(group) for group in self.required)


_ANY = tuple(SEQUENCES)

TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("brain", "Brain mask", ((*_ANY,),)),
        Task("wmh", "White matter hyperintensities", (("flair",),), ("t1", "t2"), ("wmh",), 3.0),
        Task("cmb", "Cerebral microbleeds", (("t2star", "swi"),), ("t1",), ("cmb",), 4.0),  # >= 2 mm
        Task("lacune", "Lacunes", (("flair",), ("t1", "t2")), ("t2",), ("lacune",), 14.0),  # >= 3 mm
        Task("epvs", "Enlarged perivascular spaces", (("t1", "t2"),), ("flair",), ("epvs",), 2.0),
        Task(
            "ccm",
            "Cerebral cavernous malformations",
            (("t2", "t2star", "swi"),),
            ("t2star", "swi", "t1"),
            ("ccm",),
            4.0,
        ),
        Task(
            "tumor",
            "Radiosurgery tumours",
            (("t1c",),),
            ("flair", "t1", "t2"),
            ("metastasis", "meningioma", "schwannoma"),
            4.0,  # >= 2 mm
            extra_axial=True,
        ),
    )
}

#: Group tasks stand for several tasks at once.
GROUPS: dict[str, tuple[str, ...]] = {
    "csvd": ("wmh", "cmb", "lacune", "epvs"),
    "all": tuple(TASKS),
}

TASK_CHOICES: tuple[str, ...] = (*TASKS, *GROUPS)


def expand_tasks(names: Iterable[str]) -> list[str]:
    """Expand group names (csvd, all) into tasks, keeping registry order and dropping duplicates.

    Raises:
        InputError: an unknown task name.
    """
    wanted: set[str] = set()
    for n in names:
        key = n.lower()
        if key in GROUPS:
            wanted.update(GROUPS[key])
        elif key in TASKS:
            wanted.add(key)
        else:
            raise InputError(f"unknown task {n!r}; expected one of {', '.join(TASK_CHOICES)}")
    return [t for t in TASKS if t in wanted]


def tasks_for_sequences(present: Iterable[str]) -> list[Task]:
    """The tasks whose required sequences are all present, in registry order."""
    have = set(present)
    return [t for t in TASKS.values() if t.runnable(have)]


def check_sequence(name: str) -> str:
    """Normalise a sequence name (case-insensitive) and check it is known.

    Raises:
        InputError: an unknown sequence name.
    """
    key = name.lower().replace("*", "star").replace("-", "")
    if key not in SEQUENCES:
        raise InputError(f"unknown sequence {name!r}; expected one of {', '.join(SEQUENCES)}")
    return key
