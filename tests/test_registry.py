import pytest

from neurolesion import InputError
from neurolesion.registry import TASKS, check_sequence, expand_tasks, tasks_for_sequences


def test_groups_expand_in_registry_order() -> None:
    assert expand_tasks(["csvd"]) == ["wmh", "cmb", "lacune", "epvs"]
    assert expand_tasks(["tumor", "brain", "tumor"]) == ["brain", "tumor"]
    assert expand_tasks(["all"]) == list(TASKS)


def test_unknown_task_names_the_choices() -> None:
    with pytest.raises(InputError, match="unknown task 'wmhh'.*csvd"):
        expand_tasks(["wmhh"])


def test_tasks_follow_present_sequences() -> None:
    assert [t.name for t in tasks_for_sequences({"t2star"})] == ["brain", "cmb", "ccm"]
    assert [t.name for t in tasks_for_sequences({"t1c", "flair"})] == ["brain", "wmh", "tumor"]
    assert "lacune" not in [t.name for t in tasks_for_sequences({"flair"})]


def test_sequence_names_are_normalised() -> None:
    assert check_sequence("T2*") == "t2star" and check_sequence("FLAIR") == "flair"
    with pytest.raises(InputError, match="unknown sequence 'dwi'"):
        check_sequence("dwi")
