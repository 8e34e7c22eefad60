"""erf for numpy arrays (numpy has none and scipy is not a dependency)."""
from __future__ import annotations

import math

import numpy as np

_erf = np.frompyfunc(math.erf, 1, 1)


def erf_numpy(x: np.ndarray) -> np.ndarray:
    """Elementwise error function, correctly rounded per element via math.erf."""
    return np.asarray(_erf(x), dtype=x.dtype)
