"""Contrast physics: tissue order per sequence over random protocols, enhancement, dipole field, blooming."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from neurolesion.anatomy.labels import Tissue as T
from neurolesion.synth.contrast import (
    damage_white_matter,
    dephase,
    field_map,
    random_sequence,
    random_table,
    render,
    set_grey_white_ratio,
    signal_table,
    swi_combine,
    swi_lowpass,
    vary_conspicuity,
    vary_grey_white_contrast,
)
from neurolesion.synth.properties import N_CODES, PROPERTIES, property_table
from neurolesion.synth.tissues import LesionTissue as L

ORDERS = {
    "t1": [T.CSF, T.CORTICAL_GM, T.WM],
    "t2": [T.WM, T.CORTICAL_GM, T.CSF],
    "flair": [T.CSF, T.WM, T.CORTICAL_GM, L.WMH],
    "t2star": [L.CMB, T.WM, T.CORTICAL_GM, T.CSF],
}


def test_every_code_has_properties() -> None:
    codes = {int(t) for t in T} | {int(t) for t in L}
    assert codes <= set(PROPERTIES)
    for code in (L.TUMOR_ENHANCING, L.MENINGIOMA, L.SCHWANNOMA, T.VESSEL, T.DURA):
        assert PROPERTIES[code].gad > 0
    for code in (L.CMB, L.CCM_RIM, L.CALCIFICATION, L.FLOW_VOID, T.SINUS_AIR):
        assert PROPERTIES[code].chi != 0


@pytest.mark.parametrize("field_t", [1.5, 3.0])
@pytest.mark.parametrize("seq", sorted(ORDERS))
def test_tissue_order_matches_physics(seq: str, field_t: float) -> None:
    rng = np.random.default_rng(0)
    props = property_table(field_t)
    for _ in range(40):
        lut = signal_table(random_sequence(seq, field_t, rng), props)
        values = [lut[c] for c in ORDERS[seq]]
        assert values == sorted(values), (seq, field_t, values)


def test_cmb_far_below_everything_on_t2star() -> None:
    lut = signal_table(random_sequence("t2star", 3.0, np.random.default_rng(1)), property_table(3.0))
    assert lut[L.CMB] < 0.1 * min(lut[T.WM], lut[T.CORTICAL_GM])


def test_gadolinium_brightens_enhancing_tissue_only() -> None:
    rng = np.random.default_rng(2)
    props = property_table(3.0)
    for _ in range(20):
        p = random_sequence("t1c", 3.0, rng)
        with_gd, without = (
            signal_table(p, props),
            signal_table(p.__class__(**{**p.as_dict(), "contrast_agent": False}), props),
        )
        assert with_gd[L.TUMOR_ENHANCING] > 1.3 * without[L.TUMOR_ENHANCING]
        assert with_gd[T.WM] == pytest.approx(without[T.WM])


def test_random_table_keeps_background_zero() -> None:
    lut = random_table(np.random.default_rng(0))
    assert lut.shape == (N_CODES,) and lut[0] == 0 and 0 <= lut.min() and lut.max() <= 1


def test_render_paints_codes_with_texture() -> None:
    labels = np.zeros((4, 4, 4), np.uint8)
    labels[:2] = T.WM
    lut = np.zeros(N_CODES, np.float32)
    lut[T.WM] = 2.0
    img = render(labels, lut, np.zeros(N_CODES, np.float32), np.ones((4, 4, 4), np.float32))
    assert np.all(img[:2] == 2.0) and np.all(img[2:] == 0.0)


def test_dipole_field_of_a_paramagnetic_sphere() -> None:
    chi = np.zeros((32, 32, 32), np.float32)
    x, y, z = np.ogrid[:32, :32, :32]
    chi[(x - 16) ** 2 + (y - 16) ** 2 + (z - 16) ** 2 <= 4] = 1.0
    f = field_map(chi, (1.0, 1.0, 1.0))
    assert f[16, 16, 20] > 0 > f[20, 16, 16]  # along B0 positive, equator negative
    assert abs(f[16, 16, 24]) < abs(f[16, 16, 20])  # decays with distance


def _dark_volume(te: float) -> float:
    """Volume (voxels) darker than half the background after 2 mm averaging of a dephased CMB."""
    chi = np.zeros((40, 40, 40), np.float32)
    x, y, z = np.ogrid[:40, :40, :40]
    chi[(x - 20) ** 2 + (y - 20) ** 2 + (z - 20) ** 2 <= 2] = 1.2
    p = random_sequence("t2star", 3.0, np.random.default_rng(0))
    p = p.__class__(**{**p.as_dict(), "te": te})
    z_img = dephase(np.ones(chi.shape, np.float32), field_map(chi, (1.0, 1.0, 1.0)), p)
    avg = ndimage.uniform_filter(z_img.real, 2) + 1j * ndimage.uniform_filter(z_img.imag, 2)
    return float((np.abs(avg) < 0.5).sum())


def test_blooming_grows_with_te() -> None:
    assert _dark_volume(10.0) < _dark_volume(25.0) < _dark_volume(40.0)


def test_swi_darkens_negative_phase() -> None:
    img = np.ones((16, 16, 16), np.complex64)
    img[8, 8, 8] *= np.exp(-1j * 1.0)
    swi = swi_combine(img, swi_lowpass(img, (1.0, 1.0, 1.0)))
    assert swi[8, 8, 8] < 0.6 and swi[0, 0, 0] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("field_t", [1.5, 3.0])
@pytest.mark.parametrize("seq", sorted(ORDERS))
def test_tissue_order_holds_with_the_per_case_knobs_at_their_extremes(seq: str, field_t: float) -> None:
    """Weakest grey/white contrast, strongest white-matter damage, faintest lesions: still in order."""
    rng = np.random.default_rng(1)
    for _ in range(20):
        props = {k: v.copy() for k, v in property_table(field_t).items()}
        props = vary_grey_white_contrast(props, rng, (0.2, 0.2))
        props = damage_white_matter(props, rng, (0.3, 0.3))
        props = vary_conspicuity(props, rng, (0.5, 0.5))
        lut = signal_table(random_sequence(seq, field_t, rng), props)
        values = [lut[c] for c in ORDERS[seq]]
        assert values == sorted(values), (seq, field_t, values)


def test_damaged_white_matter_moves_towards_wmh_but_stays_white_matter() -> None:
    healthy = property_table(3.0)
    props = damage_white_matter(
        {k: v.copy() for k, v in healthy.items()}, np.random.default_rng(0), (1.0, 1.0)
    )
    for key in ("pd", "t1", "t2", "t2s"):
        gap = healthy[key][T.CORTICAL_GM] - healthy[key][T.WM]
        moved = props[key][T.WM] - healthy[key][T.WM]
        assert 0 < moved / gap <= 0.8 + 1e-6, key


def test_grey_white_ratio_scales_grey_codes_only() -> None:
    props = {k: v.copy() for k, v in property_table(3.0).items()}
    props["t2"][T.CORTICAL_GM] = props["t2"][T.WM]  # a cortex no brighter than white matter
    lut = signal_table(random_sequence("flair", 3.0, np.random.default_rng(3)), props)
    out = set_grey_white_ratio(lut, 1.2)
    assert out[T.CORTICAL_GM] / out[T.WM] == pytest.approx(1.2, rel=1e-5)
    factor = out[T.CORTICAL_GM] / lut[T.CORTICAL_GM]
    for code in (T.THALAMUS, T.CEREBELLAR_GM):  # deep grey matter keeps its ratio to the cortex
        assert out[code] / lut[code] == pytest.approx(factor, rel=1e-5)
    for code in (T.WM, T.CSF, L.WMH):
        assert out[code] == lut[code]
    with pytest.raises(ValueError, match="ratio"):
        set_grey_white_ratio(lut, 0.0)
    with pytest.raises(ValueError, match="white matter"):
        set_grey_white_ratio(np.zeros(N_CODES, np.float32), 1.2)


def test_damage_never_carries_white_matter_past_grey_matter_the_jitter_put_behind_it() -> None:
    """Cerebellar grey matter's T2 jittered below its white matter's: damage must not brighten it further."""
    props = {k: v.copy() for k, v in property_table(1.5).items()}
    props["t2"][T.CEREBELLAR_GM] = props["t2"][T.CEREBELLAR_WM] * 0.98
    before = props["t2"][T.CEREBELLAR_WM]
    props = damage_white_matter(props, np.random.default_rng(0), (0.3, 0.3))
    assert props["t2"][T.CEREBELLAR_WM] == before
    assert props["t2"][T.WM] > property_table(1.5)["t2"][T.WM]  # cerebral white matter still damaged
