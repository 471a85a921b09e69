"""``aialgs.data.Record`` <-> numpy: the public face of the Record codecs.

The schema is SageMaker's ``aialgs.data.Record``: features under ``features["values"]``, the label under
``label["values"]``, each a Float32/Float64/Int32 tensor, sparse when it has ``keys`` and a ``shape``
(SageMaker developer guide, "Common Data Formats for Training"). Dense and sparse rows are written the
way the SageMaker Python SDK's ``write_numpy_to_dense_tensor`` and ``write_spmatrix_to_sparse_tensor``
write them.

Decoding has two paths that give identical arrays:

* ``fast_path``: vectorised, for blocks of equal-length records whose bytes are the canonical layout of a
  dense float32 feature row with an optional float32/float64 scalar label (what the SDK's
  ``write_numpy_to_dense_tensor`` and our encoder write);
* ``general_path``: the generated ``record_pb2`` class for everything else (sparse, float64, int32, odd
  layouts).

``encode`` writes dense float rows from one header template per block, values copied in.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from smlocal.data.protobuf.encode import dense_to_records, label_records, sparse_to_records
from smlocal.data.protobuf.fast_path import DenseLayout, decode_fixed_block, dense_layout
from smlocal.data.protobuf.general_path import RecordDecodeError, decode_records
from smlocal.data.protobuf.wire import VALUES_KEY

__all__ = [
    "VALUES_KEY",
    "DenseLayout",
    "RecordDecodeError",
    "decode_fixed_block",
    "decode_records",
    "dense_layout",
    "dense_to_records",
    "label_records",
    "records_to_arrays",
    "sparse_to_records",
]


def records_to_arrays(payloads: Sequence[bytes]) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray | None]:
    """Records -> (float32 features (n, d) or CSR, float32 labels (n,) or None); fast path when it applies."""
    payloads = list(payloads)
    if len(payloads) > 1 and len(set(map(len, payloads))) == 1:
        block = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(len(payloads), -1)
        fast = decode_fixed_block(block)
        if fast is not None:
            return fast
    return decode_records(payloads, cast=True)
