"""analysis stage: the lesion table, the case anatomy (atlas registration) and the clinical scores.

Example:
    >>> from neurolesion.analysis import lesion_table
    >>> lesion_table(np.zeros((4, 4, 4), np.int32), np.eye(4), "cmb")  # doctest: +SKIP
    []
"""

from neurolesion.analysis.regions import CaseAnatomy, Location, MniAtlas, atlas_to_case, mni_atlas
from neurolesion.analysis.scores import (
    ReferenceRow,
    csvd_scores,
    load_reference_table,
    reference_from_cohort,
    task_totals,
    write_reference_table,
)
from neurolesion.analysis.table import LESION_COLUMNS, lesion_table

__all__ = [
    "LESION_COLUMNS",
    "CaseAnatomy",
    "Location",
    "MniAtlas",
    "ReferenceRow",
    "atlas_to_case",
    "csvd_scores",
    "lesion_table",
    "load_reference_table",
    "mni_atlas",
    "reference_from_cohort",
    "task_totals",
    "write_reference_table",
]
