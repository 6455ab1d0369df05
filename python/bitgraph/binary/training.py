"""Fitting the recurrent binarizer: the fixed variant and the learned (numpy) variant.

Learned variant, in order:
1. a seeded training subsample (``TRAIN_SAMPLE``), its exact float neighbours (faiss when
   importable, numpy matmul blocks otherwise) and ``VALIDATION`` held-out anchors;
2. starting point chosen on the held-out anchors (recall proxy of the code ranking) among the
   fixed random rotation and "subspace" inits: principal directions above the noise floor
   (weight 1) and below it (weight ``beta``), a random tight frame to ``code_dim`` bits
   (balanced variance per bit, like ITQ), residual scales either alpha_t = mean |r_t| or
   halving scales a0 * 2^-t that match the SDC plane weights exactly;
3. ``epochs`` of straight-through (tanh) training of phi_t, psi_t and their biases with Adam:
   listwise softmax loss over in-batch and mined hard candidates with soft targets from the
   float similarities (new-query vs old-document codes added for ``compatible_with``), plus a
   reconstruction term; the parameters of the best held-out epoch (0 = the init) are kept.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import offsets, reference


def _sub(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if x.shape[0] <= n:
        return x
    return x[np.sort(rng.choice(x.shape[0], n, replace=False))]


def random_projection(dim: int, code_dim: int, rng: np.random.Generator) -> np.ndarray:
    """(dim, code_dim): orthonormal columns when code_dim <= dim, else a Gaussian projection
    scaled by 1/sqrt(code_dim) so that norms are preserved in expectation."""
    if code_dim <= dim:
        q, r = np.linalg.qr(rng.standard_normal((dim, code_dim)))
        q *= np.sign(np.diag(r))[None, :]
        return np.ascontiguousarray(q, dtype=np.float32)
    g = rng.standard_normal((dim, code_dim)) / np.sqrt(code_dim)
    return np.ascontiguousarray(g, dtype=np.float32)


def fit_fixed(x: np.ndarray, loops: int, code_dim: int, rng: np.random.Generator
              ) -> dict[str, np.ndarray]:
    """Centre, seeded random rotation/projection, phi = identity, psi_t = alpha_t * identity
    with alpha_t = mean |r_t| measured on (a subsample of) x."""
    d = x.shape[1]
    mean = x.mean(axis=0).astype(np.float32)
    proj = random_projection(d, code_dim, rng)
    xs = _sub(x, 50_000, rng)
    r = (xs - mean) @ proj
    alphas = np.zeros(loops, dtype=np.float32)
    for t in range(loops):
        alphas[t] = np.abs(r).mean()
        r = r - alphas[t] * np.where(r > 0, 1.0, -1.0).astype(np.float32)
    return {"mean": mean, "proj": proj, "phi": reference.identity_map(),
            "phi_bias": np.zeros((loops, code_dim), np.float32), "psi": reference.identity_map(),
            "psi_scale": alphas, "psi_bias": np.zeros((loops, code_dim), np.float32)}


# ---------------------------------------------------------------------- learned variant
DEFAULT_EPOCHS = 1
TRAIN_SAMPLE = 20_000       # vectors used for training (a seeded subsample)
NEIGHBOURS = 40             # mined float neighbours per training vector
ANCHORS = 256               # anchors per step
POSITIVES = 6               # sampled from the top-10 float neighbours of each anchor
HARD = 6                    # sampled from ranks 10..NEIGHBOURS (hard negatives)
TAU_FLOAT = 0.02            # temperature of the float-similarity target distribution
RECON = 0.5                 # weight of the reconstruction term
LR = 2e-4
TARGET = "soft"             # "soft": softmax of float similarities; "pos": top-10 as positives


def mine_neighbours(x: np.ndarray, k: int, block: int = 2048) -> np.ndarray:
    """Exact top-k inner-product neighbours of every row of x among x (self excluded)."""
    n = x.shape[0]
    k = min(k, n - 1)
    try:  # optional dependency: faster exact search
        import faiss  # type: ignore

        index = faiss.IndexFlatIP(x.shape[1])
        index.add(np.ascontiguousarray(x, dtype=np.float32))
        _, ids = index.search(np.ascontiguousarray(x, dtype=np.float32), k + 1)
        out = np.empty((n, k), dtype=np.int64)
        for i in range(n):  # drop self wherever it landed (ties)
            row = ids[i][ids[i] != i]
            out[i] = row[:k]
        return out
    except ImportError:
        pass
    out = np.empty((n, k), dtype=np.int64)
    for s in range(0, n, block):
        sims = x[s:s + block] @ x.T
        sims[np.arange(sims.shape[0]), np.arange(s, s + sims.shape[0])] = -np.inf
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, 1), axis=1, kind="stable")
        out[s:s + block] = np.take_along_axis(part, order, 1)
    return out


class _Adam:
    def __init__(self, params: dict[str, np.ndarray], lr: float) -> None:
        self.lr, self.t = lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray],
             lr: float | None = None) -> None:
        self.t += 1
        lr = self.lr if lr is None else lr
        b1, b2, eps = 0.9, 0.999, 1e-8
        for k, g in grads.items():
            self.m[k] = b1 * self.m[k] + (1 - b1) * g
            self.v[k] = b2 * self.v[k] + (1 - b2) * g * g
            mh = self.m[k] / (1 - b1 ** self.t)
            vh = self.v[k] / (1 - b2 ** self.t)
            params[k] -= (lr * mh / (np.sqrt(vh) + eps)).astype(params[k].dtype)


def _forward(r0: np.ndarray, p: dict[str, np.ndarray], planes: int):
    """Returns (C (n, m) weighted +-1 code, cache for backward, final residual)."""
    w = reference.plane_weights(planes).astype(np.float32)
    r = r0
    cache = []
    code = None
    for t in range(planes):
        z = r @ p["phi"][t] + p["phi_bias"][t]
        b = np.where(z > 0, 1.0, -1.0).astype(np.float32)
        cache.append((r, z, b))
        code = w[t] * b if code is None else code + w[t] * b
        r = r - (b @ p["psi"][t] + p["psi_bias"][t])
    return code, cache, r


def _backward(dcode, dr_final, cache, p, planes):
    w = reference.plane_weights(planes).astype(np.float32)
    g = {k: np.zeros_like(p[k]) for k in ("phi", "phi_bias", "psi", "psi_bias")}
    dr = dr_final
    for t in range(planes - 1, -1, -1):
        r, z, b = cache[t]
        drec = -dr
        g["psi"][t] = b.T @ drec
        g["psi_bias"][t] = drec.sum(axis=0)
        db = drec @ p["psi"][t].T + w[t] * dcode
        sigma = float(z.std()) + 1e-12
        dz = db * (1.0 - np.tanh(z / sigma) ** 2)           # tanh straight-through estimator
        g["phi"][t] = r.T @ dz
        g["phi_bias"][t] = dz.sum(axis=0)
        dr = dr + dz @ p["phi"][t].T
    return g


def _init_learned(x: np.ndarray, planes: int, m: int, rng: np.random.Generator
                  ) -> dict[str, np.ndarray]:
    """Starts exactly at the fixed variant: proj = identity, phi_t = the random rotation,
    psi_t = alpha_t * phi_t^+ (so the first step reproduces fixed codes)."""
    fixed = fit_fixed(x, planes, m, rng)
    d = x.shape[1]
    rot = fixed["proj"]                                          # (d, m)
    pinv = np.linalg.pinv(rot).astype(np.float32)                # (m, d)
    return {
        "mean": fixed["mean"],
        "proj": np.eye(d, dtype=np.float32),
        "phi": np.repeat(rot[None], planes, axis=0).copy(),
        "phi_bias": np.zeros((planes, m), np.float32),
        "psi": np.stack([a * pinv for a in fixed["psi_scale"]]).astype(np.float32),
        "psi_scale": np.ones(planes, np.float32),
        "psi_bias": np.zeros((planes, d), np.float32),
    }


VAL_POOL = 100_000          # rows the held-out anchors are ranked against
VALIDATION = 500            # held-out anchors used to pick the init and the best epoch


SHRINK = (0.0, 0.25, 0.5, 1.0)    # candidate weights of the noise-floor principal directions


def _spectrum(x: np.ndarray, mean: np.ndarray, rng: np.random.Generator):
    xs = _sub(x, 20_000, rng) - mean
    ev, vec = np.linalg.eigh((xs.T @ xs) / len(xs))
    ev, vec = ev[::-1], np.ascontiguousarray(vec[:, ::-1])
    k = int((ev > 2.0 * np.median(ev)).sum())          # directions above the noise floor
    return xs, ev, vec, k


def _halving_scales(r: np.ndarray, planes: int) -> list[float]:
    """alpha_t = a0 * 2^-t (the reconstruction then matches the SDC plane weights exactly: a
    uniform 2^P-level quantizer per code dimension); a0 minimises the reconstruction error."""
    sample = r[: 4096]
    best, best_err = None, np.inf
    for f in np.linspace(0.3, 2.0, 18):
        a0 = float(f * sample.std())
        res = sample.copy()
        for t in range(planes):
            res -= a0 * 2.0 ** -t * np.where(res > 0, 1.0, -1.0).astype(np.float32)
        err = float((res ** 2).mean())
        if err < best_err:
            best, best_err = a0, err
    return [best * 2.0 ** -t for t in range(planes)]


def _subspace_init(xs: np.ndarray, vec: np.ndarray, k: int, beta: float, planes: int, m: int,
                   rng: np.random.Generator, mean: np.ndarray, halving: bool = False
                   ) -> dict[str, np.ndarray]:
    """phi_t = V diag(s) Q: principal directions V, weight 1 above the noise floor (first k)
    and ``beta`` below it, then a random tight frame Q (orthonormal rows when m >= dims, else
    orthonormal columns) to m bits; psi_t = alpha_t * pinv(phi_t)."""
    d = xs.shape[1]
    dims = k if beta == 0.0 else d
    if m <= dims:
        q = np.linalg.qr(rng.standard_normal((dims, m)))[0]              # (dims, m)
    else:
        q = np.linalg.qr(rng.standard_normal((m, dims)))[0].T            # (dims, m)
        q *= np.sqrt(dims / m)
    scale = np.ones(dims)
    scale[k:] = beta
    # the residual lives in the (scaled) principal space: proj = V diag(s) is (d, dims)
    proj = (vec[:, :dims] * scale[None, :]).astype(np.float32)
    q = q.astype(np.float32)
    pinv = np.linalg.pinv(q, rcond=1e-4).astype(np.float32)              # (m, dims)
    r = (xs @ proj) @ q
    alphas = []
    for _ in range(planes):
        alphas.append(float(np.abs(r).mean()))
        r = r - alphas[-1] * np.where(r > 0, 1.0, -1.0).astype(np.float32)
    if halving and planes > 1:
        alphas = _halving_scales((xs @ proj) @ q, planes)
    return {"mean": mean, "proj": proj,
            "phi": np.repeat(q[None], planes, axis=0).copy(),
            "phi_bias": np.zeros((planes, m), np.float32),
            "psi": np.stack([a * pinv for a in alphas]).astype(np.float32),
            "psi_scale": np.ones(planes, np.float32),
            "psi_bias": np.zeros((planes, dims), np.float32)}


def _ranking_terms(code: np.ndarray, pool: np.ndarray, mean: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Per-document terms <mu, x - mu> / a that the code offsets add (offsets.py), in units of
    the code inner product."""
    centred = pool - mean
    a = offsets.ip_slope(code, centred, rng)
    if not np.isfinite(a) or a <= 0:
        return np.zeros(len(pool), np.float32)
    return ((centred @ mean) / a).astype(np.float32)


def _validate(params, pool, val, truth, planes, old=None) -> float:
    """Recall proxy on held-out anchors ``val`` (rows of ``pool``): fraction of their float
    top-10 in the pool (``truth``) found in the code top-10 plus in the code top-40 (the
    re-rank candidates), self excluded, ranking as the index does (code inner product plus
    the code offsets' terms). ``old``: (old codes of the pool, their terms) to rank instead."""
    r0_all = ((pool - params["mean"]) @ params["proj"]).astype(np.float32)
    code, _, _ = _forward(r0_all, params, planes)
    if old is None:
        docs = code
        terms = _ranking_terms(code, pool, params["mean"], np.random.default_rng(0))
    else:
        docs, terms = old
    sc = code[val] @ docs.T + terms[None, :]
    sc[np.arange(len(val)), val] = -np.inf
    top40 = np.argpartition(-sc, 40, axis=1)[:, :40]
    order = np.argsort(-np.take_along_axis(sc, top40, 1), axis=1, kind="stable")
    top40 = np.take_along_axis(top40, order, 1)
    r10 = np.mean([len(set(a[:10]) & set(t)) for a, t in zip(top40, truth)]) / 10
    r40 = np.mean([len(set(a) & set(t)) for a, t in zip(top40, truth)]) / 10
    return float(r10 + r40)


def _true_top10(pool: np.ndarray, val: np.ndarray) -> np.ndarray:
    sims = pool[val] @ pool.T
    sims[np.arange(len(val)), val] = -np.inf
    top = np.argpartition(-sims, 10, axis=1)[:, :10]
    return top


def _weighted_codes(x, params, planes):
    bits, _ = reference.encode_bits(x, False, **params)
    return offsets.weighted_signs(bits, "sdc")


def _progress_bar(enabled: bool, total: int) -> Any:
    """A tqdm bar over the training steps (None when ``enabled`` is false)."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="fit binarizer", unit="step")


def _phase(bar: Any, what: str) -> None:
    """Names the phase of the fit on the bar: the phases before training move no steps."""
    if bar is not None:
        bar.set_description(f"fit binarizer: {what}")


def fit_learned(x: np.ndarray, planes: int, m: int, rng: np.random.Generator, *,
                epochs: int | None = None, progress: bool = False,
                old: dict[str, np.ndarray] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The learned variant (see the module doc). Returns (contract arrays, info).

    ``old`` (frozen params of a compatible binarizer): the new model starts from it, the loss
    adds new-query-code vs old-document-code terms, and epochs are selected on the sum of the
    new-vs-new and new-vs-old held-out recall.
    """
    epochs = DEFAULT_EPOCHS if epochs is None else int(epochs)
    xs = _sub(x, TRAIN_SAMPLE, rng).astype(np.float32)
    n = xs.shape[0]
    if old is not None:
        params = {k: np.array(v, dtype=np.float32) for k, v in old.items()}
        if params["phi"].size == 0:  # old fixed model: expand to explicit matrices
            d = x.shape[1]
            params["phi"] = np.repeat(params["proj"][None], planes, 0).copy()
            params["psi"] = np.stack([a * np.linalg.pinv(params["proj"])
                                      for a in params["psi_scale"]]).astype(np.float32)
            params["proj"] = np.eye(d, dtype=np.float32)
            params["psi_bias"] = np.zeros((planes, d), np.float32)
            params["psi_scale"] = np.ones(planes, np.float32)
            params["mean"] = old["mean"].astype(np.float32)
    else:
        params = _init_learned(x, planes, m, rng)
    info: dict[str, Any] = {"epochs": epochs, "train_sample": n,
                            "init": "rotation" if old is None else "compatible_with"}
    if n < 20 or len(x) <= 50:  # too few to mine 40 neighbours and hold out a validation set
        return params, info
    # progress: one bar step per training step; the phases before it are named on the bar
    bar = _progress_bar(progress, epochs * max(1, n // ANCHORS))
    _phase(bar, "mining neighbours")
    nb = mine_neighbours(xs, NEIGHBOURS)
    kn = nb.shape[1]
    # validation: held-out anchors ranked against a large pool (up to VAL_POOL rows of x), so
    # that the choice reflects recall at the size of the real collection
    pool = _sub(x, VAL_POOL, rng).astype(np.float32)
    n_val = min(VALIDATION, len(pool) // 10)
    val = np.sort(rng.choice(len(pool), n_val, replace=False))
    truth = _true_top10(pool, val)
    train_ids = np.arange(n)
    old_codes = None
    old_pool = None
    if old is not None:
        old_codes = _weighted_codes(xs, old, planes)
        old_pool = _weighted_codes(pool, old, planes)
        old_pool = (old_pool, _ranking_terms(old_pool, pool, old["mean"],
                                             np.random.default_rng(0)))

    def score(p_):
        sc = _validate(p_, pool, val, truth, planes)
        if old_pool is not None:
            sc += _validate(p_, pool, val, truth, planes, old_pool)
        return sc

    _phase(bar, "choosing the start")
    best_score = score(params)
    if old is None:  # data-driven choice of the starting point
        sub, _, vec, k = _spectrum(xs, params["mean"], rng)
        info["signal_dims"] = k
        halvings = (False, True) if planes > 1 else (False,)
        starts = []
        if 2 <= k < xs.shape[1]:
            starts += [(k, beta, h) for beta in SHRINK for h in halvings]
        # the top-m principal directions, rotated: with halving scales each code dimension is
        # a uniform 2^P-level quantizer whose SDC is exactly the reconstructions' inner product
        if k != min(m, xs.shape[1]):
            starts += [(min(m, xs.shape[1]), 0.0, h) for h in halvings]
        for dims, beta, halving in starts:
            cand = _subspace_init(sub, vec, dims, beta, planes, m, rng, params["mean"], halving)
            sc = score(cand)
            if sc > best_score:
                params, best_score = cand, sc
                info["init"] = f"subspace(dims={dims}, beta={beta}, halving={halving})"
    info["init_score"] = best_score
    best = {k: np.array(v) for k, v in params.items()}
    best_epoch = 0
    if epochs == 0:
        if bar is not None:
            bar.close()
        return params, info
    r0_all = ((xs - params["mean"]) @ params["proj"]).astype(np.float32)
    var0 = float((r0_all ** 2).sum(axis=1).mean()) + 1e-12
    train = {k: params[k] for k in ("phi", "phi_bias", "psi", "psi_bias")}
    train["log_gamma"] = np.array([np.log(1.0 / TAU_FLOAT)], np.float32)
    opt = _Adam(train, LR)
    norm = float(reference.plane_weights(planes).sum()) * np.sqrt(m)
    steps = max(1, len(train_ids) // ANCHORS)
    total = epochs * steps
    _phase(bar, "training")
    losses = []
    step_i = 0
    for epoch in range(epochs):
        perm = rng.permutation(train_ids)
        ep_loss = 0.0
        for s in range(steps):
            lr = LR * 0.5 * (1 + np.cos(np.pi * step_i / total))  # cosine decay
            step_i += 1
            anchors = perm[s * ANCHORS:(s + 1) * ANCHORS]
            a = anchors.shape[0]
            pos = np.take_along_axis(
                nb[anchors], rng.integers(0, min(10, kn), size=(a, POSITIVES)), 1)
            hard = np.take_along_axis(
                nb[anchors], rng.integers(min(10, kn - 1), kn, size=(a, HARD)), 1)
            parts = [anchors, pos.ravel(), hard.ravel()]
            if TARGET == "pos":
                parts.append(nb[anchors][:, :min(10, kn)].ravel())
            batch = np.unique(np.concatenate(parts))
            a_pos = np.searchsorted(batch, anchors)
            r0 = r0_all[batch]
            code, cache, r_fin = _forward(r0, train, planes)
            cn = code / norm
            gamma = float(np.exp(train["log_gamma"][0]))
            xb = xs[batch]
            target_logits = (xb[a_pos] @ xb.T) / TAU_FLOAT
            self_mask = np.zeros_like(target_logits, dtype=bool)
            self_mask[np.arange(a), a_pos] = True
            target_logits[self_mask] = -np.inf
            if TARGET == "pos":  # the anchor's true top-10 neighbours share the target mass
                posmask = np.zeros_like(self_mask)
                top = nb[anchors][:, :min(10, kn)]
                idx = np.searchsorted(batch, top)
                idx = np.minimum(idx, len(batch) - 1)
                hit = batch[idx] == top
                rows = np.repeat(np.arange(a), top.shape[1]).reshape(top.shape)
                posmask[rows[hit], idx[hit]] = True
                target = posmask / np.maximum(posmask.sum(axis=1, keepdims=True), 1)
            else:
                target = np.exp(target_logits - target_logits.max(axis=1, keepdims=True))
                target /= target.sum(axis=1, keepdims=True)

            def nce(q, dmat):
                s_ = gamma * (q @ dmat.T)
                s_[self_mask] = -np.inf
                s_ = s_ - s_.max(axis=1, keepdims=True)
                logp = s_ - np.log(np.exp(s_).sum(axis=1, keepdims=True))
                pr = np.exp(logp)
                with np.errstate(invalid="ignore"):
                    loss = -np.where(target > 0, target * logp, 0).sum() / a
                ds_ = (pr - target) / a                         # d loss / d (gamma * sim)
                raw = q @ dmat.T
                dgam = float((ds_ * np.where(self_mask, 0, raw)).sum()) * gamma
                return loss, ds_ * gamma, dgam

            loss, dsim, dgam = nce(cn[a_pos], cn)
            dcn = dsim.T @ cn[a_pos]
            np.add.at(dcn, a_pos, dsim @ cn)
            if old_codes is not None:                       # new queries vs old documents
                ocn = old_codes[batch] / norm
                l2, dsim2, dg2 = nce(cn[a_pos], ocn)
                loss += l2
                dgam += dg2
                np.add.at(dcn, a_pos, dsim2 @ ocn)
            rec = float((r_fin ** 2).sum(axis=1).mean()) / var0
            loss += RECON * rec
            dr_fin = (2.0 * RECON / (var0 * r_fin.shape[0])) * r_fin
            grads = _backward(dcn / norm, dr_fin, cache, train, planes)
            grads["log_gamma"] = np.array([dgam], np.float32)
            opt.step(train, grads, lr)
            ep_loss += loss
            if bar is not None:
                bar.update(1)
        losses.append(ep_loss / steps)
        cur = dict(params, **{k: train[k] for k in ("phi", "phi_bias", "psi", "psi_bias")})
        sc = score(cur)
        if sc > best_score:
            best_score, best_epoch = sc, epoch + 1
            best = {k: np.array(v) for k, v in cur.items()}
        if bar is not None:
            bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4f}")
    if bar is not None:
        bar.close()
    params = best
    info.update(best_epoch=best_epoch, best_score=best_score, final_loss=float(losses[-1]), first_loss=float(losses[0]),
                gamma=float(np.exp(train["log_gamma"][0])))
    return params, info
