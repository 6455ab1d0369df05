"""``RecurrentBinarizer``: float embeddings -> stacked binary codes (BEBR, Gan et al. 2023).

The code of a vector has ``loops`` bit planes of ``code_dim`` bits (docs/backend-contract.md,
"Binary codes"). The parameters are the contract's arrays (``mean, proj, phi, phi_bias, psi,
psi_scale, psi_bias``); ``encode`` runs the backend's ``binary_encode`` kernel (native when it
has one, numba otherwise).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import _backend
from .._cuda import arrays as device_arrays
from .._validation import (MAX_DIM, as_matrix, check_dim, check_int, check_magnitude,
                           check_seed, default_threads)
from ..errors import BitgraphTypeError, BitgraphValueError, IndexFileError
from ..persistence import read_index, save_atomic
from . import offsets as offsets_mod
from . import reference, selection, training

KIND = "binarizer"
STATE_VERSION = 1
MAX_LOOPS = 8
MAX_EPOCHS = 10_000  # a fit runs every epoch it is given (no early stop)
_ARRAYS = ("mean", "proj", "phi", "phi_bias", "psi", "psi_scale", "psi_bias")


MAX_MODEL_BYTES = 2 << 30
MAX_FIT_BYTES = 4 << 30
FIT_ROWS = 50_000  # a fit works on at most this many sample rows (training.py subsamples)
OFFSET_PAIRS = offsets_mod.PAIRS  # pairs the code offsets are fitted on
# The asymmetric query grid: 2^B levels spanning +-QUERY_CLIP RMS of the query values. Flat,
# 4x re-rank, fixed, recall@10 at clip 1.5 / 2 / 2.5 / 3 / 4 / 5: docs-minilm-384 1 plane
# 0.961 / 0.964 / 0.964 / 0.965 / 0.965 / 0.961, 2 planes 0.996 / 0.997 / 0.998 / 0.998 /
# 0.998 / 0.997; glove-50 2 planes 0.716 / 0.755 / 0.765 / 0.760 / 0.744 / 0.730.
QUERY_CLIP = 3.0
MAX_BITS = 8.0


def _check_model_size(dim: int, loops: int, code_dim: int, learned: bool) -> None:
    """Refuses shapes whose parameters alone would take gigabytes: the projection is
    dim x code_dim floats and a learned model adds two code_dim x code_dim maps per loop."""
    floats = dim * code_dim + (2 * loops * code_dim * code_dim if learned else 0)
    if 4 * floats > MAX_MODEL_BYTES:
        raise BitgraphValueError(
            f"a binarizer with dim={dim}, loops={loops}, code_dim={code_dim}"
            f"{' (learned)' if learned else ''} needs {4 * floats / 2**30:.1f} GiB of "
            f"parameters (at most {MAX_MODEL_BYTES >> 30} GiB): use a smaller code_dim")


def _checked_offsets(raw: Any) -> dict[str, dict[str, float]] | None:
    """Offset units from a saved state (absent in files of older versions)."""
    if raw is None:
        return None
    out = {}
    for kind in ("sdc", "hamming", "asymmetric"):
        if kind == "asymmetric" and kind not in raw:  # files of older versions
            continue
        unit, half = float(raw[kind]["unit"]), float(raw[kind]["half"])
        if not (np.isfinite(unit) and unit > 0 and 0 <= half <= offsets_mod.MAX_OFFSET // 2):
            raise BitgraphValueError(f"invalid code offset units {raw[kind]!r}")
        out[kind] = {"unit": unit, "half": half}
    return out


def _checked_step(raw: Any) -> float | None:
    if raw is None:
        return None
    step = float(raw)
    if not (np.isfinite(step) and step > 0):
        raise BitgraphValueError(f"invalid query_step {raw!r}")
    return step


def _fit_query_step(x: np.ndarray, params: dict[str, np.ndarray],
                    rng: np.random.Generator, sample: int = 20_000) -> float:
    """The asymmetric grid step: 2^B levels over +-QUERY_CLIP standard deviations of the query
    values of (a sample of) the fit vectors (already normalised when the binarizer is)."""
    if len(x) > sample:
        x = x[np.sort(rng.choice(len(x), sample, replace=False))]
    v = reference.query_values(x, params["mean"], params["proj"], params["psi"],
                               params["psi_scale"])
    sd = float(np.sqrt(np.mean(np.square(v, dtype=np.float64))))
    return max(QUERY_CLIP * sd / 2 ** (reference.QUERY_BITS - 1), 1e-30)


class RecurrentBinarizer:
    """Recurrent residual binarization of float vectors into ``loops`` planes of ``code_dim``
    bits (``loops * code_dim / dim`` bits per dimension).

    ``learned=False`` is the fixed variant (centre, random rotation, sign, residual with scales
    alpha_t = mean |r_t|); ``learned=True`` fits linear phi_t / psi_t maps to the data (numpy
    only, see :mod:`bitgraph.binary.training`): a principal-subspace start chosen on held-out
    recall, then straight-through contrastive training, keeping the best held-out epoch.

    ``bits`` asks for a budget of bits per dimension and lets ``fit`` choose the layout: it
    fits each candidate (``selection.candidate_layouts``: b planes of dim bits, and 4b / 6b
    planes of dim/4 / dim/6 bits; so up to three fits) and keeps the one whose codes rank a
    held-out part of the sample best. ``loops`` / ``code_dim`` give a layout explicitly (and
    are the chosen ones after such a fit). Either way ``fit`` also measures which code
    distance ranks the codes best (``distance``: what BinaryIndex uses by default).
    """

    def __init__(self, dim: int, *, bits: float | None = None, loops: int | None = None,
                 code_dim: int | None = None, learned: bool = True, seed: int = 0,
                 normalize: bool = True) -> None:
        self._dim = check_dim(dim)
        if bits is not None:
            if loops is not None or code_dim is not None:
                raise BitgraphValueError("give either bits or loops / code_dim, not both")
            if (isinstance(bits, (bool, np.bool_)) or not isinstance(bits, (int, float))
                    or not np.isfinite(bits) or not 0 < bits <= MAX_BITS):
                raise BitgraphValueError(
                    f"bits must be a number of bits per dimension in (0, {MAX_BITS:g}], "
                    f"got {bits!r}")
            bits = float(bits)
            if bits >= 1 and abs(bits - round(bits)) > 1e-9:
                raise BitgraphValueError(
                    f"bits must be a whole number of bits per dimension, or a fraction below "
                    f"1, got {bits!r}")
            loops, code_dim = selection.candidate_layouts(self._dim, bits, MAX_LOOPS)[0]
        self._bits = None if bits is None else float(bits)
        loops = 2 if loops is None else loops
        self._loops = int(check_int("loops", loops, 1, MAX_LOOPS))  # type: ignore[arg-type]
        cd = self._dim if code_dim is None else check_int("code_dim", code_dim, 1, MAX_DIM)
        self._code_dim = int(cd)  # type: ignore[arg-type]
        for name, flag in (("learned", learned), ("normalize", normalize)):
            if not isinstance(flag, (bool, np.bool_)):
                raise BitgraphTypeError(f"{name} must be a bool, got {flag!r}")
        self._learned = bool(learned)
        self._normalize = bool(normalize)
        self._seed = check_seed(seed)
        _check_model_size(self._dim, self._loops, self._code_dim, self._learned)
        self._params: dict[str, np.ndarray] | None = None
        self._offsets: dict[str, dict[str, float]] | None = None
        self._query_step: float | None = None
        self._distance: str | None = None
        self._info: dict[str, Any] = {}

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        return self._dim

    @property
    def loops(self) -> int:
        return self._loops

    planes = loops

    @property
    def code_dim(self) -> int:
        return self._code_dim

    @property
    def words_per_plane(self) -> int:
        return reference.words_per_plane(self._code_dim)

    @property
    def code_bytes(self) -> int:
        return self._loops * self.words_per_plane * 8

    @property
    def query_code_bytes(self) -> int:
        """Bytes of an asymmetric query code (``reference.QUERY_BITS`` planes per code plane)."""
        return self.code_bytes * reference.QUERY_BITS

    @property
    def bits(self) -> float | None:
        """The bits-per-dimension budget it was made with (None: an explicit layout)."""
        return self._bits

    @property
    def distance(self) -> str:
        """The code distance that ranked its codes best on held-out vectors at fit time
        ("asymmetric" | "sdc"; files of older versions: "asymmetric" when it has a query grid,
        else "sdc"). ``info["held_out_score"]`` has the scores."""
        if self._query_step is None:
            return "sdc"
        return self._distance or "asymmetric"

    @property
    def query_step(self) -> float | None:
        """The asymmetric query grid's step (fitted; None in files of older versions)."""
        return self._query_step

    @property
    def bits_per_dim(self) -> float:
        return self._loops * self._code_dim / self._dim

    @property
    def learned(self) -> bool:
        return self._learned

    @property
    def normalize(self) -> bool:
        return self._normalize

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def is_fitted(self) -> bool:
        return self._params is not None

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The contract arrays (read-only views); raises if not fitted."""
        self._require_fitted("params")
        return dict(self._params)  # type: ignore[arg-type]

    @property
    def info(self) -> dict[str, Any]:
        """Fit statistics (fit seconds, epochs, final losses)."""
        return dict(self._info)

    def __repr__(self) -> str:
        return (f"RecurrentBinarizer(dim={self._dim}, loops={self._loops}, "
                f"code_dim={self._code_dim}, learned={self._learned}, seed={self._seed}, "
                f"normalize={self._normalize}, fitted={self.is_fitted})")

    # ------------------------------------------------------------------ helpers
    def _require_fitted(self, what: str) -> None:
        if self._params is None:
            raise BitgraphValueError(
                f"RecurrentBinarizer.{what}() called before fit(): call fit(sample_vectors) "
                "first (or load a saved binarizer)")

    def _prepare(self, x: Any, what: str) -> np.ndarray:
        # The kernels work in float32: a squared norm or a projection of values beyond
        # ~1e18 would overflow to infinity and code garbage.
        arr = as_matrix(x, self._dim, what)
        check_magnitude(arr, what, "rescale the vectors")
        return arr

    def _set_params(self, params: dict[str, np.ndarray]) -> None:
        out = {k: np.ascontiguousarray(params[k], dtype=np.float32) for k in _ARRAYS}
        p, m, d = self._loops, self._code_dim, self._dim
        r = out["proj"].shape[1] if out["proj"].ndim == 2 else -1
        ok = (out["mean"].shape == (d,) and out["proj"].ndim == 2 and out["proj"].shape[0] == d
              and out["phi_bias"].shape == (p, m) and out["psi_scale"].shape == (p,)
              and out["psi_bias"].shape == (p, r)
              and (out["phi"].shape == (p, r, m) or (out["phi"].size == 0 and r == m))
              and (out["psi"].shape == (p, m, r) or (out["psi"].size == 0 and r == m)))
        if not ok:
            shapes = {k: v.shape for k, v in out.items()}
            raise BitgraphValueError(f"inconsistent binarizer arrays for loops={p}, "
                                     f"code_dim={m}, dim={d}: {shapes}")
        if out["phi"].size == 0:
            out["phi"] = reference.identity_map()
        if out["psi"].size == 0:
            out["psi"] = reference.identity_map()
        for v in out.values():
            v.setflags(write=False)
        self._params = out

    # ------------------------------------------------------------------ fit
    def fit(self, sample_vectors: Any, *, epochs: int | None = None, progress: bool = False,
            compatible_with: RecurrentBinarizer | None = None) -> RecurrentBinarizer:
        """Fits the binarizer on sample vectors (n >= 2, more is better; at most ~50k used).

        ``compatible_with=old`` (learned only) trains new parameters whose query codes search
        documents encoded by ``old`` (same loops / code_dim / dim); ``old`` is not changed.
        With ``bits=`` it fits every candidate layout and keeps the best (see the class).
        """
        if self._bits is not None and compatible_with is None:
            layouts = selection.candidate_layouts(self._dim, self._bits, MAX_LOOPS)
            if len(layouts) > 1:
                return self._fit_best_layout(sample_vectors, layouts, epochs, progress)
        if (self._bits is not None and isinstance(compatible_with, RecurrentBinarizer)
                and compatible_with.bits_per_dim == self._bits):
            # a compatible model has the old one's layout (whichever the old fit chose)
            self._loops, self._code_dim = compatible_with.loops, compatible_with.code_dim
        return self._fit_layout(sample_vectors, epochs, progress, compatible_with)

    def _fit_best_layout(self, sample_vectors: Any, layouts: list[tuple[int, int]],
                         epochs: int | None, progress: bool) -> RecurrentBinarizer:
        import time

        t0 = time.perf_counter()
        scores: dict[str, float] = {}
        best: RecurrentBinarizer | None = None
        best_score = -1.0
        for loops, code_dim in layouts:
            try:
                cand = RecurrentBinarizer(self._dim, loops=loops, code_dim=code_dim,
                                          learned=self._learned, seed=self._seed,
                                          normalize=self._normalize)
            except BitgraphValueError:
                continue  # too large a model for this layout
            cand._fit_layout(sample_vectors, epochs, progress, None)
            score = max(cand._info.get("held_out_score", {}).values(), default=0.0)
            scores[f"{loops}x{code_dim}"] = score
            if best is None or score > best_score:  # ties: the simpler (earlier) layout
                best, best_score = cand, score
        assert best is not None  # the first layout is this binarizer's own: it fits
        self._loops, self._code_dim = best._loops, best._code_dim
        self._params, self._offsets = best._params, best._offsets
        self._query_step, self._distance = best._query_step, best._distance
        self._info = dict(best._info, layout_score=scores,
                          fit_seconds=time.perf_counter() - t0)
        return self

    def _fit_layout(self, sample_vectors: Any, epochs: int | None, progress: bool,
                    compatible_with: RecurrentBinarizer | None) -> RecurrentBinarizer:
        import time

        x = self._prepare(sample_vectors, "sample_vectors")
        if x.shape[0] < 2:
            raise BitgraphValueError(
                f"fit needs at least 2 sample vectors, got {x.shape[0]}")
        # The fit holds a few (rows, code_dim * loops) float32 arrays at once: projections of
        # the sample, and the code vectors of the ~20,000 pairs the offsets are fitted on.
        rows = max(min(x.shape[0], FIT_ROWS), OFFSET_PAIRS)
        work = 8 * rows * (self._code_dim * self._loops + self._dim)
        if work > MAX_FIT_BYTES:
            raise BitgraphValueError(
                f"fitting code_dim={self._code_dim} on {x.shape[0]:,} vectors needs ~"
                f"{work / 2**30:.0f} GiB of working memory (at most {MAX_FIT_BYTES >> 30} GiB): "
                "use a smaller code_dim or fewer sample vectors")
        if epochs is not None:
            check_int("epochs", epochs, 0, MAX_EPOCHS)
        old = None
        if compatible_with is not None:
            if not isinstance(compatible_with, RecurrentBinarizer):
                raise BitgraphTypeError("compatible_with must be a RecurrentBinarizer")
            compatible_with._require_fitted("fit(compatible_with=...)")
            if (compatible_with.dim, compatible_with.loops, compatible_with.code_dim,
                    compatible_with.normalize) != (self._dim, self._loops, self._code_dim,
                                                   self._normalize):
                raise BitgraphValueError(
                    "compatible_with must have the same dim, loops, code_dim and normalize: "
                    f"old has dim={compatible_with.dim}, loops={compatible_with.loops}, "
                    f"code_dim={compatible_with.code_dim}, normalize={compatible_with.normalize}"
                    f"; new has dim={self._dim}, loops={self._loops}, "
                    f"code_dim={self._code_dim}, normalize={self._normalize}")
            if not self._learned:
                raise BitgraphValueError("compatible_with needs learned=True")
            old = compatible_with
        t0 = time.perf_counter()
        if self._normalize:
            norm = np.linalg.norm(x, axis=1, keepdims=True)
            x = np.where(norm > 0, x / np.where(norm > 0, norm, 1), 0).astype(np.float32)
        rng = np.random.default_rng(self._seed)
        if not self._learned:
            params, info = training.fit_fixed(x, self._loops, self._code_dim, rng), {}
        else:
            params, info = training.fit_learned(
                x, self._loops, self._code_dim, rng, epochs=epochs, progress=progress,
                old=None if old is None else old._params)
        self._set_params(params)
        self._query_step = _fit_query_step(x, params, np.random.default_rng(self._seed + 2))
        self._offsets = offsets_mod.fit_offsets(x, params, self._normalize,
                                                np.random.default_rng(self._seed + 1),
                                                query_step=self._query_step)
        split = selection.held_out_split(x, np.random.default_rng(self._seed + 3))
        self._distance, scores = selection.best_distance(self, split)
        self._info = dict(info, fit_seconds=time.perf_counter() - t0, n_fit=int(x.shape[0]),
                          held_out_score=scores)
        return self

    # ------------------------------------------------------------------ encode / decode
    def encode(self, vectors: Any, *, threads: int | None = None) -> np.ndarray:
        """Codes of ``vectors`` (n, dim): uint8 (n, code_bytes), the contract's bit layout.

        Vectors on a CUDA device (CuPy, or anything with ``__cuda_array_interface__`` /
        DLPack) are encoded there and the codes come back as a CuPy uint8 array (the CPU's
        bits, except where a value sits within float rounding of a sign change).
        """
        self._require_fitted("encode")
        if device_arrays.is_device_array(vectors):
            return self._encode_on_device(vectors)
        x = self._prepare(vectors, "vectors")
        nthreads = default_threads(threads)
        p = self._params
        assert p is not None
        backend = _backend.get_backend(None)
        fn = getattr(backend, "binary_encode", None)
        if fn is None:
            from .._numba import binary_encode as fn  # noqa: N813
        return fn(x, self._normalize, p["mean"], p["proj"], p["phi"], p["phi_bias"], p["psi"],
                  p["psi_scale"], p["psi_bias"], nthreads)

    def _encode_on_device(self, vectors: Any) -> Any:
        from .. import _cuda
        from .._cuda import encode as dev_encode

        cp = _cuda.require("encoding CUDA arrays")
        x = device_arrays.device_queries(cp, vectors, self._dim, "l2", "vectors")
        words = dev_encode.encode_words(cp, x, self._normalize, self._params)  # type: ignore
        return words.view(cp.uint8).reshape(words.shape[0], self.code_bytes)

    def encode_queries(self, vectors: Any) -> np.ndarray:
        """Asymmetric query codes of ``vectors`` (n, dim): uint8 (n, query_code_bytes).

        Per code plane t, the query values v_t (``reference.query_values``: the query in the
        space the plane's bits reconstruct) quantized to ``reference.QUERY_BITS`` bits on the
        fitted grid (``query_step``) and stored as bit planes. ``BinaryIndex(distance=
        "asymmetric")`` scores them against the codes: the query keeps 4 bits per value where
        the symmetric distances keep its sign only."""
        self._require_fitted("encode_queries")
        if self._query_step is None:
            raise BitgraphValueError(
                "this binarizer has no asymmetric query grid (fitted by an older bitgraph): "
                "refit it to use the asymmetric distance")
        x = self._prepare(vectors, "vectors")
        if self._normalize:
            norm = np.linalg.norm(x, axis=1, keepdims=True)
            x = np.where(norm > 0, x / np.where(norm > 0, norm, 1), 0).astype(np.float32)
        p = self._params
        assert p is not None
        v = reference.query_values(x, p["mean"], p["proj"], p["psi"], p["psi_scale"])
        return reference.pack_query_levels(reference.query_levels(v, self._query_step))

    @property
    def has_offsets(self) -> bool:
        """Whether the binarizer can give code offsets (fitted by this version of bitgraph)."""
        return self._offsets is not None

    def has_offsets_for(self, distance: str) -> bool:
        """Whether it can give code offsets for ``distance``."""
        return self._offsets is not None and distance in self._offsets

    def offsets(self, vectors: Any, distance: str = "sdc") -> np.ndarray:
        """Code offsets of ``vectors`` for ``distance`` ("sdc" | "hamming" | "asymmetric"):
        (n,) uint32.

        A code row may carry its offset; the distance of two such rows is then code distance
        + both offsets, which ranks as the full inner product instead of the centred one
        (:mod:`bitgraph.binary.offsets`)."""
        self._require_fitted("offsets")
        if distance not in ("sdc", "hamming", "asymmetric"):
            raise BitgraphValueError(
                f"distance must be 'sdc', 'hamming' or 'asymmetric', got {distance!r}")
        if self._offsets is None or distance not in self._offsets:
            raise BitgraphValueError("this binarizer has no code offsets (fitted by an older "
                                     "bitgraph, or its codes do not track the inner product)")
        x = self._prepare(vectors, "vectors")
        if self._normalize:
            norm = np.linalg.norm(x, axis=1, keepdims=True)
            x = np.where(norm > 0, x / np.where(norm > 0, norm, 1), 0).astype(np.float32)
        u = self._offsets[distance]
        return offsets_mod.compute_offsets(x, self._params["mean"],  # type: ignore[index]
                                           u["unit"], u["half"])

    def decode(self, codes: Any) -> np.ndarray:
        """Reconstruction (n, r) float32 of codes in the projected (residual) space:
        sum_t psi_t(b_t), comparable to ``(f - mean) @ proj``."""
        self._require_fitted("decode")
        codes = self._check_codes(codes)
        p = self._params
        assert p is not None
        signs = reference.unpack_planes(codes, self._loops, self._code_dim)
        signs = signs.astype(np.float32) * 2.0 - 1.0
        out = np.zeros((codes.shape[0], p["proj"].shape[1]), dtype=np.float32)
        for t in range(self._loops):
            b = signs[:, t]
            out += (b @ p["psi"][t] if p["psi"].size else p["psi_scale"][t] * b) + p["psi_bias"][t]
        return out

    def project(self, vectors: Any) -> np.ndarray:
        """``(f - mean) @ proj`` of vectors (the space ``decode`` reconstructs)."""
        self._require_fitted("project")
        x = self._prepare(vectors, "vectors")
        if self._normalize:
            norm = np.linalg.norm(x, axis=1, keepdims=True)
            x = np.where(norm > 0, x / np.where(norm > 0, norm, 1), 0).astype(np.float32)
        return (x - self._params["mean"]) @ self._params["proj"]  # type: ignore[index]

    def _check_codes(self, codes: Any) -> np.ndarray:
        arr = np.asarray(codes)
        if arr.dtype != np.uint8:
            raise BitgraphTypeError(f"codes must be uint8, got dtype {arr.dtype}")
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != self.code_bytes:
            raise BitgraphValueError(
                f"codes must have shape (n, {self.code_bytes}), got {arr.shape}")
        return np.ascontiguousarray(arr)

    # ------------------------------------------------------------------ state / files
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(meta, arrays): JSON-able meta data and the contract arrays (for embedding)."""
        self._require_fitted("get_state")
        meta = {"kind": KIND, "state_version": STATE_VERSION, "dim": self._dim,
                "loops": self._loops, "code_dim": self._code_dim, "learned": self._learned,
                "seed": self._seed, "normalize": self._normalize,
                # a copy: callers may edit the meta (the fitted units must not change)
                "offsets": (None if self._offsets is None
                            else {k: dict(v) for k, v in self._offsets.items()}),
                "query_step": self._query_step, "distance": self._distance,
                "bits": self._bits,
                "info": {k: v for k, v in self._info.items()
                         if isinstance(v, (int, float, str, bool))
                         or (isinstance(v, dict) and all(isinstance(x, (int, float))
                                                        for x in v.values()))}}
        return meta, {k: np.array(v) for k, v in self._params.items()}  # type: ignore[union-attr]

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]
                   ) -> RecurrentBinarizer:
        try:
            if meta.get("kind", KIND) != KIND:
                raise BitgraphValueError(f"not a binarizer state (kind={meta.get('kind')!r})")
            if check_int("state_version", meta.get("state_version", 1), 1) > STATE_VERSION:
                raise BitgraphValueError("binarizer state written by a newer bitgraph")
            # The constructor checks every number (a file may hold inf, 2**70 or "x").
            obj = cls(meta["dim"], loops=meta["loops"], code_dim=meta["code_dim"],
                      learned=meta["learned"], seed=meta["seed"], normalize=meta["normalize"])
            obj._set_params({k: np.array(arrays[k]) for k in _ARRAYS})
            obj._offsets = _checked_offsets(meta.get("offsets"))
            obj._query_step = _checked_step(meta.get("query_step"))
            distance = meta.get("distance")
            if distance is not None and distance not in selection.DISTANCES:
                raise BitgraphValueError(f"invalid distance {distance!r}")
            obj._distance = distance
            bits = meta.get("bits")
            obj._bits = None if bits is None else float(bits)
            if obj._bits is not None and not (np.isfinite(obj._bits) and 0 < obj._bits <= MAX_BITS):
                raise BitgraphValueError(f"invalid bits {bits!r}")
            obj._info = dict(meta.get("info", {}))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise BitgraphValueError(f"malformed binarizer state: {exc!r}") from exc
        return obj

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the binarizer to ``path`` atomically (bitgraph file format, kind
        "binarizer")."""
        meta, arrays = self.get_state()
        save_atomic(path, meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RecurrentBinarizer:
        meta, arrays = read_index(path)
        if meta.get("kind") != KIND:
            raise IndexFileError(f"{os.fspath(path)}: not a binarizer file "
                                 f"(kind={meta.get('kind')!r})")
        try:
            return cls.from_state(meta, arrays)
        except BitgraphValueError as exc:
            raise IndexFileError(f"{os.fspath(path)}: {exc}") from exc
