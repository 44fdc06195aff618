import json
import math

import numpy as np
import pytest

from neurolesion.io.jsonsafe import json_safe


def test_non_finite_floats_become_null_and_the_result_is_strict_json() -> None:
    value = {"a": float("nan"), "b": [float("inf"), -math.inf, 1.5], "c": {"d": np.float32("nan")}}
    text = json.dumps(json_safe(value), allow_nan=False)
    assert json.loads(text) == {"a": None, "b": [None, None, 1.5], "c": {"d": None}}
    with pytest.raises(ValueError):
        json.dumps(value, allow_nan=False)


def test_numpy_scalars_become_python_numbers_and_keys_strings() -> None:
    out = json_safe({1: np.int64(3), "x": (np.float64(0.25), np.float32(2.5)), "s": "text", "n": None})
    assert out == {"1": 3, "x": [0.25, 2.5], "s": "text", "n": None}
    assert type(out["1"]) is int and all(type(v) is float for v in out["x"])
