"""Every generator on one head, in the simulator's order: each task's truth stays exact."""

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

from neurolesion.synth.head import Head
from neurolesion.synth.lesions import ccm, cmb, epvs, lacune, mimics, tumor, wmh
from neurolesion.synth.tissues import LesionTissue as LT

INSTANCE_CODES = {
    "tumor": [LT.TUMOR_ENHANCING, LT.TUMOR_NECROSIS, LT.MENINGIOMA, LT.SCHWANNOMA],
    "ccm": [LT.CCM_CORE, LT.CCM_RIM, LT.CCM_FLUID],
    "wmh": [LT.WMH],
    "lacune": [LT.LACUNE_FLUID],
    "epvs": [LT.EPVS_FLUID],
    "cmb": [LT.CMB],
}


def test_generators_do_not_disturb_each_other(head: Head) -> None:
    rng = np.random.default_rng(0)
    maps = {
        "tumor": tumor.insert(head, rng, kinds=tuple(tumor.KINDS), met_count=6).instances,
        "ccm": ccm.insert(head, rng, count=4).instances,
        "wmh": wmh.insert(head, rng, fazekas_pv=3, fazekas_deep=3).instances,
        "lacune": lacune.insert(head, rng, count=6).instances,
        "epvs": epvs.insert(head, rng, bg_grade=3, cso_grade=3).instances,
        "cmb": cmb.insert(head, rng, count=20).instances,
    }
    mimics.insert(head, rng, pallidal_probability=1.0, plexus_probability=1.0)
    occupied = np.zeros(head.labels.shape, dtype=int)
    for task, inst in maps.items():
        assert inst.max() > 0, task
        np.testing.assert_array_equal(inst > 0, np.isin(head.labels, INSTANCE_CODES[task]), err_msg=task)
        occupied += inst > 0
    assert occupied.max() == 1


@pytest.mark.parametrize("module", [tumor, ccm, wmh, lacune, epvs, cmb, mimics], ids=lambda m: m.__name__)
def test_generator_deterministic_for_a_seed(module: ModuleType, fresh_head: Callable[[], Head]) -> None:
    a, b = fresh_head(), fresh_head()
    la = module.insert(a, np.random.default_rng(11))
    lb = module.insert(b, np.random.default_rng(11))
    np.testing.assert_array_equal(la.instances, lb.instances)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.regions, b.regions)
    assert [r.centre_vox for r in la.records] == [r.centre_vox for r in lb.records]
