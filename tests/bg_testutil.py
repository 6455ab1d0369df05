"""Helpers shared by the test modules: data, numpy references, recall."""

from __future__ import annotations

import numpy as np

from bitgraph import _backend

BACKENDS = _backend.available_backends()
METRICS = ("l2", "ip", "cosine")
STORAGES = ("float32", "float16", "int8")


def clustered(n: int, dim: int, *, seed: int = 0, n_clusters: int = 50,
              spread: float = 0.7) -> np.ndarray:
    """n points around n_clusters Gaussian centres (the centres come from a fixed stream, so
    base and query sets drawn with different seeds share them)."""
    centres = np.random.default_rng(12345 + dim).normal(size=(n_clusters, dim)) * spread
    rng = np.random.default_rng(seed)
    return (centres[rng.integers(0, n_clusters, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def exact_distances(x: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """(nq, n) float64 distances as the API defines them (smaller is closer)."""
    x = np.asarray(x, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if metric == "l2":
        # expanded in float64 (exact enough, and no (nq, n, dim) temporary)
        d = (q * q).sum(1)[:, None] - 2.0 * (q @ x.T) + (x * x).sum(1)[None, :]
        return np.maximum(d, 0.0)
    if metric == "ip":
        return -(q @ x.T)
    if metric == "cosine":
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        return 1.0 - qn @ xn.T
    raise ValueError(metric)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's true neighbours (ids >= 0) that were found."""
    found = np.asarray(found)
    truth = np.asarray(truth)
    hits = [len(set(f[f >= 0].tolist()) & set(t[t >= 0].tolist())) / max(1, int((t >= 0).sum()))
            for f, t in zip(found, truth)]
    return float(np.mean(hits))


def assert_valid_result(res, k: int, known_ids=None) -> None:
    """Shape/dtype/padding invariants every SearchResult must satisfy."""
    ids, d = res.ids, res.distances
    assert ids.dtype == np.int64 and d.dtype == np.float32
    assert ids.ndim == 2 and ids.shape[1] == k and d.shape == ids.shape
    pad = ids < 0
    assert (ids[pad] == -1).all()
    assert np.isposinf(d[pad]).all()
    assert np.isfinite(d[~pad]).all()
    # padding only at the end of a row, real results sorted by distance
    assert (np.diff(pad.astype(np.int8), axis=1) >= 0).all()
    dd = np.where(pad, np.inf, d)
    assert (dd[:, 1:] >= dd[:, :-1]).all()
    for row, p in zip(ids, pad):
        real = row[~p]
        assert len(set(real.tolist())) == real.size, f"duplicate ids in a result row: {row}"
    assert (res.counts == (~pad).sum(axis=1)).all()
    if known_ids is not None:
        assert np.isin(ids[~pad], np.asarray(known_ids)).all()


def encode_int8_reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The contract's int8 encoding in numpy: (codes int8, scale float32, sqnorm float32)."""
    x = np.asarray(x, dtype=np.float32)
    amax = np.abs(x).max(axis=1)
    scale = np.where(amax > 0, amax / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    codes = np.clip(np.rint(x / scale[:, None]), -127, 127).astype(np.float32)
    v = codes * scale[:, None]
    # sequential float32 sum, as the contract asks (cumsum accumulates left to right)
    sqnorm = np.cumsum(v * v, axis=1, dtype=np.float32)[:, -1] if x.shape[1] else np.zeros(len(x), np.float32)
    return codes.astype(np.int8), scale, sqnorm.astype(np.float32)


def decode_reference(x: np.ndarray, storage: str) -> np.ndarray:
    """What the index stores for float32 input x, decoded back to float32."""
    x = np.asarray(x, dtype=np.float32)
    if storage == "float32":
        return x.copy()
    if storage == "float16":
        return x.astype(np.float16).astype(np.float32)
    codes, scale, _ = encode_int8_reference(x)
    return codes.astype(np.float32) * scale[:, None]


def storage_reference(x: np.ndarray, q: np.ndarray, metric: str, storage: str
                      ) -> tuple[np.ndarray, np.ndarray, str]:
    """(stored base, query, core metric) such that the exact distances of an index with this
    metric/storage are ``exact_distances(stored, query, core_metric)`` (+1 for cosine).

    Cosine: the API normalises in float32 before encoding and reports 1 - <q, stored>.
    """
    x = np.asarray(x, dtype=np.float32)
    q = np.asarray(q, dtype=np.float32)
    if metric == "cosine":
        x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    return decode_reference(x, storage), q, ("l2" if metric == "l2" else "ip")


def reference_distances(x, q, metric, storage="float32") -> np.ndarray:
    """(nq, n) float64 exact distances of an index with this metric/storage (numpy)."""
    stored, qq, core_metric = storage_reference(x, q, metric, storage)
    d = exact_distances(stored, qq, core_metric)
    return d + 1.0 if metric == "cosine" else d


def reference_search(x, q, k, metric, storage="float32", ids=None):
    """Exact k-NN of what an index with this metric/storage holds (numpy, float64):
    (ids (nq,k), distances (nq,k)), padded -1/+inf."""
    d = reference_distances(x, q, metric, storage)
    n = d.shape[1]
    ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
    kk = min(k, n)
    order = np.argsort(d, axis=1, kind="stable")[:, :kk]
    out_ids = np.full((d.shape[0], k), -1, dtype=np.int64)
    out_d = np.full((d.shape[0], k), np.inf)
    out_ids[:, :kk] = ids[order]
    out_d[:, :kk] = np.take_along_axis(d, order, axis=1)
    return out_ids, out_d


def assert_same_neighbours(ids_a, d_a, ids_b, d_b, *, rtol=1e-5, atol=1e-5,
                           max_differing_rows=0.01) -> None:
    """Two k-NN results agree: same padding, distances close position by position, and ids
    equal in all but ``max_differing_rows`` of the rows (near-ties may be ordered either way).
    """
    ids_a, ids_b = np.asarray(ids_a), np.asarray(ids_b)
    d_a = np.asarray(d_a, dtype=np.float64)
    d_b = np.asarray(d_b, dtype=np.float64)
    assert ids_a.shape == ids_b.shape and d_a.shape == d_b.shape == ids_a.shape
    assert ((ids_a < 0) == (ids_b < 0)).all(), "different numbers of results"
    real = ids_a >= 0
    np.testing.assert_allclose(d_a[real], d_b[real], rtol=rtol, atol=atol)
    differing = int((ids_a != ids_b).any(axis=1).sum())
    assert differing <= max_differing_rows * ids_a.shape[0], f"{differing} rows differ"


def assert_ids_match_distances(ids, d, full_distances, *, rtol=1e-5, atol=1e-5) -> None:
    """Every returned (id, distance) pair is consistent with the reference distance matrix
    ``full_distances[query, id]`` (ids are positions in the base set here)."""
    ids = np.asarray(ids)
    real = ids >= 0
    rows = np.nonzero(real)[0]
    np.testing.assert_allclose(np.asarray(d, np.float64)[real],
                               full_distances[rows, ids[real]], rtol=rtol, atol=atol)
