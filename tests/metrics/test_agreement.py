"""Agreement statistics against scipy, pingouin and scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from neurolesion.metrics.agreement import (
    anova_oneway,
    bland_altman,
    bootstrap_ci,
    cohen_kappa,
    icc,
    paired_t_test,
    pearson,
    sign_test,
    spearman,
)

RNG = np.random.default_rng(0)
A = RNG.normal(10, 3, 40)
B = A + RNG.normal(0.5, 1.0, 40)


def test_correlations_and_tests_match_scipy() -> None:
    assert pearson(A, B).statistic == pytest.approx(stats.pearsonr(A, B).statistic)
    assert spearman(A, B).p_value == pytest.approx(stats.spearmanr(A, B).pvalue)
    t = pg.ttest(A, B, paired=True)
    assert paired_t_test(A, B).statistic == pytest.approx(float(t["T"].iloc[0]))
    assert paired_t_test(A, B).p_value == pytest.approx(float(t["p_val"].iloc[0]))


def test_sign_test() -> None:
    above, p = sign_test(B, A)
    k = int(np.sum(B > A))
    assert above == k
    assert p == pytest.approx(stats.binomtest(k, 40).pvalue)
    assert sign_test([1, 2], [1, 2]) == (0.0, 1.0)


def test_bland_altman() -> None:
    ba = bland_altman(A, B)
    d = A - B
    assert ba.bias == pytest.approx(d.mean())
    assert ba.upper - ba.lower == pytest.approx(2 * 1.96 * d.std(ddof=1))
    assert ba.n == 40


def test_icc_matches_pingouin() -> None:
    ratings = np.stack([A, B, A + RNG.normal(0, 2, 40)], axis=1)
    long = pd.DataFrame(
        {
            "subject": np.repeat(np.arange(40), 3),
            "rater": np.tile(["r1", "r2", "r3"], 40),
            "score": ratings.ravel(),
        }
    )
    ref = pg.intraclass_corr(long, targets="subject", raters="rater", ratings="score").set_index("Type")
    assert icc(ratings) == pytest.approx(ref.loc["ICC(A,1)", "ICC"], abs=1e-9)
    assert icc(ratings, average=True) == pytest.approx(ref.loc["ICC(A,k)", "ICC"], abs=1e-9)
    with pytest.raises(ValueError, match="ratings"):
        icc(A[:, None])


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_kappa_matches_sklearn(weights: str | None) -> None:
    a = RNG.integers(0, 4, 60)
    b = np.clip(a + RNG.integers(-1, 2, 60), 0, 3)
    assert cohen_kappa(a, b, weights) == pytest.approx(cohen_kappa_score(a, b, weights=weights))  # type: ignore[arg-type]
    assert cohen_kappa([2, 2], [2, 2]) == 1.0


def test_anova_and_tukey_match_pingouin() -> None:
    groups = {"unet": A, "vnet": B, "deepmedic": A + 1.5 + RNG.normal(0, 1, 40)}
    res = anova_oneway(groups)
    long = pd.DataFrame({"v": np.concatenate(list(groups.values())), "g": np.repeat(list(groups), 40)})
    ref = pg.anova(long, dv="v", between="g")
    assert res.f == pytest.approx(float(ref["F"].iloc[0]))
    tukey = stats.tukey_hsd(*groups.values())
    assert res.posthoc[("unet", "vnet")][1] == pytest.approx(tukey.pvalue[0, 1])
    assert res.posthoc[("unet", "deepmedic")][0] == pytest.approx(A.mean() - groups["deepmedic"].mean())
    with pytest.raises(ValueError, match="two groups"):
        anova_oneway({"a": A})


def test_bootstrap_ci() -> None:
    lo, hi = bootstrap_ci(A, n_boot=2000)
    sem = A.std(ddof=1) / np.sqrt(A.size)
    assert lo < A.mean() < hi
    assert hi - lo == pytest.approx(2 * 1.96 * sem, rel=0.2)
    lo_med, hi_med = bootstrap_ci(np.r_[A, np.nan, np.inf], statistic=np.median)
    assert lo_med < np.median(A) < hi_med
    assert np.isnan(bootstrap_ci([1.0])).all()
    assert bootstrap_ci([2.0, 2.0]) == (2.0, 2.0)
