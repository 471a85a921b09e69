"""The k-means ``model_algo-1``: an NDArray list holding one (k, feature_dim) float32 array of centers."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smlocal.artifacts.mxnet_ndarray import NDArrayFormatError, dumps_ndarrays, loads_ndarrays

# rows per chunk so that a (rows, k) distance block stays around 32 MB whatever the payload
_BLOCK_ELEMENTS = 4_000_000


class KMeansFormatError(ValueError):
    """The bytes are an NDArray file but not a k-means model."""


@dataclass
class KMeansModel:
    centers: np.ndarray  # (k, feature_dim) float32

    algorithm = "kmeans"

    def __post_init__(self) -> None:
        c = np.asarray(self.centers, dtype=np.float32)
        if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 1:
            raise ValueError(f"centers must be a non-empty (k, feature_dim) matrix, got shape {c.shape}")
        self.centers = np.ascontiguousarray(c)
        self._centers64 = self.centers.astype(np.float64)
        self._norms64 = np.einsum("ij,ij->i", self._centers64, self._centers64)

    @property
    def k(self) -> int:
        return int(self.centers.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self.centers.shape[1])

    def predict(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(closest_cluster, distance_to_cluster): the nearest center's row index and the Euclidean
        (not squared) distance to it, both float32 (n,), as the built-in's endpoint returns them.

        The argmin uses |x|^2 - 2 x.c + |c|^2 in float64 (one BLAS product per block); the distance to
        the chosen center is then recomputed from the differences in float32 for dense input, which
        reproduces the built-in's printed distances (bit-exact or within an ulp on the AWS fixtures).
        """
        if X.shape[1] != self.feature_dim:
            raise ValueError(f"expected {self.feature_dim} features, got {X.shape[1]}")
        sparse = hasattr(X, "tocsr")
        X = X.tocsr() if sparse else np.asarray(X, dtype=np.float32)
        n = X.shape[0]
        labels = np.empty(n, dtype=np.int64)
        dist = np.empty(n, dtype=np.float32)
        step = max(1, _BLOCK_ELEMENTS // self.k)
        for start in range(0, n, step):
            block = X[start:start + step]
            block64 = block.astype(np.float64)
            if sparse:
                norms = np.asarray(block64.multiply(block64).sum(axis=1)).ravel()
                cross = np.asarray(block64 @ self._centers64.T)
            else:
                norms = np.einsum("ij,ij->i", block64, block64)
                cross = block64 @ self._centers64.T
            sq = norms[:, None] - 2.0 * cross + self._norms64[None, :]
            best = sq.argmin(axis=1)
            labels[start:start + step] = best
            if sparse:
                chosen = np.maximum(sq[np.arange(len(best)), best], 0.0)
                dist[start:start + step] = np.sqrt(chosen).astype(np.float32)
            else:
                diff = block - self.centers[best]
                dist[start:start + step] = np.sqrt((diff * diff).sum(axis=1))
        return labels.astype(np.float32), dist

    def outputs(self, X) -> dict[str, np.ndarray]:
        """The response columns in the built-in's key order."""
        closest, distance = self.predict(X)
        return {"closest_cluster": closest, "distance_to_cluster": distance}


def dumps_kmeans(model: KMeansModel) -> bytes:
    """``model_algo-1`` bytes: ``mx.nd.save`` of a one-element list (no names)."""
    return dumps_ndarrays([model.centers])


def loads_kmeans(data: bytes) -> KMeansModel:
    """Parse a k-means ``model_algo-1``; a dict (a ``state_*`` file, a PCA model) is rejected."""
    arrays = loads_ndarrays(data)
    if isinstance(arrays, dict):
        raise KMeansFormatError(
            f"holds named arrays {sorted(arrays)}, not a k-means model (one unnamed (k, d) array)"
        )
    if len(arrays) != 1 or arrays[0].ndim != 2:
        shapes = [a.shape for a in arrays]
        raise KMeansFormatError(f"holds arrays of shapes {shapes}, expected one (k, feature_dim) array")
    if arrays[0].dtype.kind != "f":
        raise KMeansFormatError(f"centers have dtype {arrays[0].dtype}, expected float32")
    return KMeansModel(arrays[0])


__all__ = ["KMeansModel", "KMeansFormatError", "dumps_kmeans", "loads_kmeans", "NDArrayFormatError"]
