"""What every codec shares: the 400 error text and the checks on a decoded feature matrix."""
from __future__ import annotations

from typing import Dict, Union

import numpy as np
import scipy.sparse as sp

from smlocal.errors import RequestError

# Features as decoders return them: float32 (n, d) ndarray, or CSR float32 for sparse requests.
Features = Union[np.ndarray, sp.csr_matrix]
# Response columns in key order: name -> (n,) or (n, C) array (see serving.predict).
Columns = Dict[str, np.ndarray]

BAD_PAYLOAD = "unable to evaluate payload provided"


def bad_payload(reason: str) -> RequestError:
    """The built-ins' 400 text, with the reason (and the row) appended."""
    return RequestError(f"{BAD_PAYLOAD}: {reason}")


def first_non_finite_row(values: np.ndarray) -> int | None:
    """0-based index of the first row holding NaN or +-inf, or None."""
    finite = np.isfinite(values)
    if finite.all():
        return None
    return int(np.argwhere(~finite)[0][0])


def require_finite(X: Features, row_offset: int = 1) -> None:
    data = X.data if sp.issparse(X) else X
    if data.size == 0 or np.isfinite(data).all():
        return
    if sp.issparse(X):
        bad = int(np.searchsorted(X.indptr, np.argwhere(~np.isfinite(X.data))[0][0], side="right") - 1)
    else:
        bad = first_non_finite_row(X)
    raise bad_payload(f"row {bad + row_offset} has a missing (NaN) or infinite value; send finite numbers only")


def require_rows(n: int) -> None:
    if n == 0:
        raise bad_payload("the payload holds no records")
