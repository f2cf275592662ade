"""Exact JSON encoding of numpy arrays, non-finite floats and tuples for optimizer state.

Optimizer state must survive a crash as plain JSON (no pickles). Python's ``repr`` of a float
round-trips exactly, so encoding float64 arrays as lists of floats restores bit-identical state.
Non-finite values are spelled as strings because strict JSON has no NaN or Infinity.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _float(v: float) -> Any:
    if math.isfinite(v):
        return v
    if math.isnan(v):
        return {"float": "nan"}
    return {"float": "inf" if v > 0 else "-inf"}


def encode(obj: Any) -> Any:
    """Turn numpy arrays, numpy scalars, tuples and non-finite floats into JSON-able values."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, np.ndarray):
        flat = obj.ravel().tolist()
        if obj.dtype.kind == "f":
            flat = [_float(v) for v in flat]
        return {"ndarray": flat, "dtype": obj.dtype.str, "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return encode(obj.item())
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return _float(obj)
    if isinstance(obj, tuple):
        return {"tuple": [encode(v) for v in obj]}
    if isinstance(obj, list):
        return [encode(v) for v in obj]
    if isinstance(obj, dict):
        return {"dict": [[encode(k), encode(v)] for k, v in obj.items()]}
    raise TypeError(f"cannot encode {type(obj).__name__} into optimizer state")


def decode(obj: Any) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "ndarray" in obj:
        dtype = np.dtype(obj["dtype"])
        flat = [_NONFINITE[v["float"]] if isinstance(v, dict) else v for v in obj["ndarray"]]
        return np.asarray(flat, dtype=dtype).reshape(obj["shape"])
    if "float" in obj:
        return _NONFINITE[obj["float"]]
    if "tuple" in obj:
        return tuple(decode(v) for v in obj["tuple"])
    if "dict" in obj:
        return {decode(k): decode(v) for k, v in obj["dict"]}
    raise ValueError(f"unknown encoded value {obj!r}")
