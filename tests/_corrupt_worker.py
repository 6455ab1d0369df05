"""Loads damaged index files in a separate process (run by test_persistence.py).

A damaged file must never crash the process: loading either raises an IndexFileError (an
OSError and a BitgraphError), or it succeeds, and then searching must work. With ``verify=True``
a file that loads must also give exactly the original results (the damage hit bytes that do
not matter, such as padding between sections or the reserved header field), and a crafted file
(valid checksums, edited values) that loads must search with finite distances.

Usage: python _corrupt_worker.py BACKEND WORKDIR N_RANDOM SEED OUT_JSON
Writes a JSON summary: outcome counts and a list of failures (empty when all is well).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import traceback
import zlib

import numpy as np

import bitgraph as bg
from bitgraph import persistence

OK_ERRORS = (bg.IndexFileError,)


def _data(n=400, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, dim)) * 2
    return (centres[rng.integers(0, 10, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def make_files(backend, workdir):
    """A few saved indexes of different kinds (with tombstones) and their reference results."""
    x = _data()
    q = _data(20, seed=1)
    specs = {
        "hnsw_l2_f32": lambda: bg.HNSWIndex(12, metric="l2", M=6, ef_construction=30,
                                            backend=backend),
        "hnsw_ip_i8": lambda: bg.HNSWIndex(12, metric="ip", storage="int8", M=4,
                                           ef_construction=20, backend=backend),
        "flat_cos_f16": lambda: bg.FlatIndex(12, metric="cosine", storage="float16",
                                             backend=backend),
        "binary_flat": lambda: bg.BinaryIndex(binz, graph="flat", rerank="memory",
                                              backend=backend),
        "binary_hnsw": lambda: bg.BinaryIndex(binz, graph="hnsw", M=6, ef_construction=30,
                                              rerank="mmap", backend=backend),
    }
    # 2 planes of 40 bits: padding bits in every plane, and code offsets
    binz = bg.RecurrentBinarizer(12, loops=2, code_dim=40, learned=False).fit(x)
    files = {}
    attr = bg.HNSWIndex(12, metric="l2", M=6, ef_construction=30, backend=backend)
    attr.add(x, attributes={"price": np.linspace(0, 1, len(x)), "cat": np.arange(len(x)) % 7},
             threads=1)
    path = os.path.join(workdir, "hnsw_attr.bg")
    attr.save(path)
    files["hnsw_attr"] = (path, open(path, "rb").read(), attr.search(q, k=8, ef=40))
    for name, make in specs.items():
        index = make()
        index.add(x, ids=np.arange(len(x)) * 3 + 5, threads=1)
        index.remove(np.arange(10) * 3 + 5)
        index.add(x[:5] + 0.5, ids=[20, 23, 26, 29, 32], threads=1)  # re-added ids
        path = os.path.join(workdir, f"{name}.bg")
        index.save(path)
        res = index.search(q, k=8, ef=40)
        files[name] = (path, open(path, "rb").read(), res)
    return files, q


def _search_ok(index, q):
    res = index.search(q, k=8, ef=40)
    assert res.ids.shape == (len(q), 8)
    return res


def _same(a, b):
    return np.array_equal(a.ids, b.ids) and np.array_equal(a.distances, b.distances)


def try_load(path, q, ref, backend, *, verify, mmap, label, failures, outcomes):
    try:
        index = bg.load(path, mmap=mmap, verify=verify, backend=backend)
    except OK_ERRORS as exc:
        outcomes[f"raised {type(exc).__name__}"] = outcomes.get(f"raised {type(exc).__name__}", 0) + 1
        return "raised"
    except Exception as exc:  # noqa: BLE001 - any other error is a failure to report
        failures.append(f"{label}: load raised {type(exc).__name__}: {exc}")
        return "bad"
    try:
        res = _search_ok(index, q)
    except Exception as exc:  # noqa: BLE001
        failures.append(f"{label}: search after load raised {type(exc).__name__}: {exc}\n"
                        f"{traceback.format_exc()}")
        return "bad"
    if verify and ref is not None and not _same(res, ref):
        failures.append(f"{label}: loaded with verify=True but gives other results")
        return "bad"
    if verify and not np.isfinite(res.distances[res.ids >= 0]).all():
        failures.append(f"{label}: loaded with verify=True but returns non-finite distances")
        return "bad"
    key = "loaded, not compared" if ref is None else "loaded, same results"
    outcomes[key] = outcomes.get(key, 0) + 1
    return "loaded"


def random_damage(files, q, backend, workdir, n, seed, failures, outcomes):
    rng = np.random.default_rng(seed)
    names = sorted(files)
    scratch = os.path.join(workdir, "damaged.bg")
    for i in range(n):
        name = names[i % len(names)]
        _, blob, ref = files[name]
        data = bytearray(blob)
        op = rng.choice(["flip", "flip_header", "bytes", "truncate", "zero_run", "append"],
                        p=[0.35, 0.15, 0.15, 0.2, 0.1, 0.05])
        if op == "flip":
            pos = int(rng.integers(0, len(data)))
            data[pos] ^= 1 << int(rng.integers(0, 8))
            what = f"flip bit at {pos}"
        elif op == "flip_header":
            pos = int(rng.integers(0, min(len(data), 200)))
            data[pos] ^= int(rng.integers(1, 256))
            what = f"flip byte at {pos}"
        elif op == "bytes":
            pos = int(rng.integers(0, len(data) - 8))
            data[pos:pos + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
            what = f"8 random bytes at {pos}"
        elif op == "truncate":
            cut = int(rng.integers(0, len(data)))
            data = data[:cut]
            what = f"truncate to {cut}"
        elif op == "zero_run":
            pos = int(rng.integers(0, len(data)))
            length = int(rng.integers(1, 256))
            data[pos:pos + length] = bytes(len(data[pos:pos + length]))
            what = f"zero {length} bytes at {pos}"
        else:
            data += rng.integers(0, 256, int(rng.integers(1, 100)), dtype=np.uint8).tobytes()
            what = "append garbage"
        with open(scratch, "wb") as f:
            f.write(data)
        changed = bytes(data) != blob
        for verify in (True, False):
            mmap = bool(rng.integers(0, 2))
            label = f"#{i} {name} {what} verify={verify} mmap={mmap}"
            outcome = try_load(scratch, q, ref if verify else None, backend, verify=verify,
                               mmap=mmap, label=label, failures=failures, outcomes=outcomes)
            if op == "truncate" and changed and outcome == "loaded":
                failures.append(f"{label}: a truncated file loaded")


def _rewrite(path, out, edit_meta=None, edit_arrays=None):
    """Re-saves the index at ``path`` with edited metadata/arrays and correct checksums."""
    meta, arrays = persistence.read_index(path)
    meta = json.loads(json.dumps(meta))
    arrays = {k: np.array(v) for k, v in arrays.items()}
    if edit_meta:
        edit_meta(meta)
    if edit_arrays:
        edit_arrays(arrays)
    with open(out, "wb") as f:
        persistence.write_index(f, meta, arrays)


def _retype_section(path, out, name, new_dtype):
    """Copies an index file declaring section ``name`` with another dtype string of the same
    length (the bytes stay; the header checksum is recomputed)."""
    data = bytearray(open(path, "rb").read())
    (header_len,) = struct.unpack_from("<I", data, 12)
    header = json.loads(bytes(data[24:24 + header_len]))
    old = next(s["dtype"] for s in header["sections"] if s["name"] == name)
    assert len(old) == len(new_dtype)
    marker = ('"name": "%s"' % name).encode()
    blob = bytes(data[24:24 + header_len])
    start = blob.rindex(b'"dtype": "%s"' % old.encode(), 0, blob.index(marker) + 400)
    blob = blob[:start] + b'"dtype": "%s"' % new_dtype.encode() + blob[start + 11 + len(old):]
    data[24:24 + header_len] = blob
    struct.pack_into("<I", data, 16, zlib.crc32(blob))
    with open(out, "wb") as f:
        f.write(data)


def _set(d, key, value):
    d[key] = value


def crafted_cases():
    """(name, file, edit_meta, edit_arrays, must_fail): valid checksums, invalid contents."""
    h, f, i8, bf, bh = "hnsw_l2_f32", "flat_cos_f16", "hnsw_ip_i8", "binary_flat", "binary_hnsw"

    def links(fn):
        return lambda a: fn(a["links0"])

    cases = [
        ("unknown kind", h, lambda m: _set(m, "kind", "ivf"), None, True),
        ("bad metric", h, lambda m: _set(m, "metric", "manhattan"), None, True),
        ("bad storage", f, lambda m: _set(m, "storage", "int4"), None, True),
        ("storage changed", h, lambda m: _set(m, "storage", "float16"), None, True),
        ("dim changed", h, lambda m: _set(m, "dim", m["dim"] + 1), None, True),
        ("dim zero", f, lambda m: _set(m, "dim", 0), None, True),
        ("dim not a number", f, lambda m: _set(m, "dim", "twelve"), None, True),
        ("M changed", h, lambda m: m["params"].update(M=m["params"]["M"] + 1), None, True),
        ("M huge", h, lambda m: m["params"].update(M=100000), None, True),
        ("params missing", h, lambda m: m.pop("params"), None, True),
        ("next_id not a number", h, lambda m: _set(m, "next_id", "x"), None, True),
        ("no entry point", h, lambda m: m["scalars"].pop("entry_point"), None, True),
        ("entry point out of range", h, lambda m: m["scalars"].update(entry_point=10**6), None, True),
        ("entry point negative", h, lambda m: m["scalars"].update(entry_point=-1), None, True),
        ("max level wrong", h, lambda m: m["scalars"].update(max_level=m["scalars"]["max_level"] + 1), None, True),
        ("link out of range", h, None, links(lambda l: l.__setitem__((3, 1), l.shape[0] + 5)), True),
        ("negative link", h, None, links(lambda l: l.__setitem__((3, 1), -2)), True),
        ("link count too big", h, None, links(lambda l: l.__setitem__((3, 0), l.shape[1])), True),
        ("link count negative", h, None, links(lambda l: l.__setitem__((3, 0), -1)), True),
        ("level negative", h, None, lambda a: a["levels"].__setitem__(0, -1), True),
        ("level huge", h, None, lambda a: a["levels"].__setitem__(0, 1000), True),
        ("levels disagree with upper", h, None,
         lambda a: a["levels"].__setitem__(int(np.argmin(a["levels"])), a["levels"].min() + 1), True),
        ("upper link out of range", h, None,
         lambda a: a["upper"].__setitem__(slice(1, None, 7), 10**6) if a["upper"].size else None, True),
        ("links0 section missing", h, None, lambda a: a.pop("links0"), True),
        ("deleted section missing", f, None, lambda a: a.pop("deleted"), True),
        ("vectors section missing", f, None, lambda a: a.pop("vectors"), True),
        ("labels missing (hnsw)", h, None, lambda a: a.pop("labels"), True),
        ("fewer vector rows", h, None, lambda a: a.__setitem__("vectors", a["vectors"][:-1]), True),
        ("fewer vector rows (flat)", f, None, lambda a: a.__setitem__("vectors", a["vectors"][:-1]), True),
        ("fewer labels (flat)", f, None, lambda a: a.__setitem__("labels", a["labels"][:-1]), True),
        ("vectors as float32", h, None,
         lambda a: a.__setitem__("vectors", a["vectors"].view(np.float32)), True),
        ("vectors 3-d", f, None,  # same bytes: numba reshapes and loads, native refuses
         lambda a: a.__setitem__("vectors", a["vectors"].reshape(a["vectors"].shape[0], -1, 2)), False),
        ("duplicate live label (hnsw)", h, None, lambda a: _dup_label(a), True),
        ("duplicate live label (flat)", f, None, lambda a: _dup_label(a), True),
        # benign: wider dtypes holding the same values may load (then must search alike)
        ("links0 as int64", h, None,
         lambda a: a.__setitem__("links0", a["links0"].astype(np.int64)), False),
        ("labels as int32", f, None,
         lambda a: a.__setitem__("labels", a["labels"].astype(np.int32)), False),
        ("deleted as 2/0", f, None,
         lambda a: a.__setitem__("deleted", a["deleted"] * 2), False),
        # values the format can hold but add never stores (checksums recomputed)
        ("inf in a vector", h, None, lambda a: _f32_rows(a)[4].__setitem__(2, np.inf), True),
        ("NaN in a vector", h, None, lambda a: _f32_rows(a)[0].__setitem__(0, np.nan), True),
        ("l2 vector beyond the magnitude limit", h, None,
         lambda a: _f32_rows(a)[7].__setitem__(1, 1e30), True),
        ("inf in a float16 row", f, None,
         lambda a: a["vectors"].view("<f2")[3].__setitem__(5, np.inf), True),
        ("non-unit cosine row", f, None,
         lambda a: a["vectors"].view("<f2").__setitem__(2, a["vectors"].view("<f2")[2] * 3),
         True),
        ("int8 scale 0xFF", i8, None, lambda a: a["vectors"][5].__setitem__(
            slice(12, 16), 0xFF), True),
        ("int8 scale negative", i8, None, lambda a: _int8_tail(a)[5].__setitem__(0, -1.0), True),
        ("int8 scale huge", i8, None, lambda a: _int8_tail(a)[5].__setitem__(0, 1e30), True),
        ("int8 norm wrong", i8, None, lambda a: _int8_tail(a)[6].__setitem__(1, 123.0), True),
        ("int8 norm inf", i8, None, lambda a: _int8_tail(a)[6].__setitem__(1, np.inf), True),
        ("negative id", f, None, lambda a: a["labels"].__setitem__(3, -7), True),
        ("next_id below a stored id", h, lambda m: _set(m, "next_id", 3), None, True),
        ("next_id beyond int64", h, lambda m: _set(m, "next_id", 2**64), None, True),
        ("inf in re-rank vectors", bf, None,
         lambda a: a["rerank_vectors"][2].__setitem__(0, np.inf), True),
        ("inf in re-rank vectors (mmap store)", bh, None,
         lambda a: a["rerank_vectors"][9].__setitem__(3, np.inf), True),
        ("non-unit re-rank vector", bf, None,
         lambda a: a["rerank_vectors"].__setitem__(4, a["rerank_vectors"][4] * 5), True),
        ("code padding bits set", bf, None, lambda a: a["vectors"][1].__setitem__(7, 0xFF), True),
        ("code offset too big", bh, None,
         lambda a: a["vectors"][2, -4:].__setitem__(slice(None), 0xFF), True),
        ("NaN in binarizer mean", bf, None, lambda a: a["binz.mean"].__setitem__(0, np.nan), True),
        ("inf in binarizer projection", bh, None,
         lambda a: a["binz.proj"].__setitem__((0, 0), np.inf), True),
        ("float attribute inf", "hnsw_attr", None,
         lambda a: a["attr.price.values"].__setitem__(0, np.inf), True),
    ]
    return cases


def _f32_rows(a):
    return a["vectors"].view("<f4")


def _int8_tail(a):
    """The (scale, sqnorm) float32 pairs after the 12 codes of every int8 row, as a view."""
    return a["vectors"][:, 12:20].view("<f4")


def _dup_label(a):
    live = np.flatnonzero(a["deleted"] == 0)
    a["labels"][live[1]] = a["labels"][live[0]]


def crafted(files, q, backend, workdir, failures, outcomes, per_case):
    # Sections declared with another dtype. Section dtypes are not checked, only cast: int32
    # links read as float32 become tiny floats that cast to 0 (no links), which loads (a
    # useless graph, but no crash), so that case only has to not crash.
    retyped = [(f"{sec} declared {dt}", which, ("retype", sec, dt), None, must)
               for which, sec, dt, must in (("flat_cos_f16", "labels", "|O8", True),
                                            ("hnsw_l2_f32", "links0", "<f4", False),
                                            ("hnsw_l2_f32", "labels", "<f8", True),
                                            ("hnsw_l2_f32", "vectors", "|S1", True))]
    for name, which, edit_meta, edit_arrays, must_fail in crafted_cases() + retyped:
        path, _, ref = files[which]
        out = os.path.join(workdir, "crafted.bg")
        if isinstance(edit_meta, tuple):
            _retype_section(path, out, edit_meta[1], edit_meta[2])
        else:
            _rewrite(path, out, edit_meta, edit_arrays)
        for mmap in (False, True):
            local = []
            outcome = try_load(out, q, None, backend, verify=True, mmap=mmap,
                               label=f"crafted '{name}' mmap={mmap}", failures=local,
                               outcomes=outcomes)
            if must_fail and outcome == "loaded":
                local.append(f"crafted '{name}' mmap={mmap}: loaded, expected IndexFileError")
            failures.extend(local)
            per_case[f"{name} mmap={mmap}"] = outcome if not local else "FAILED"


def main():
    backend, workdir, n, seed, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    files, q = make_files(backend, workdir)
    failures, outcomes, per_case = [], {}, {}
    crafted(files, q, backend, workdir, failures, outcomes, per_case)
    random_damage(files, q, backend, workdir, n, seed, failures, outcomes)
    with open(out, "w") as f:
        json.dump({"failures": failures, "outcomes": outcomes, "crafted": per_case}, f, indent=1)


if __name__ == "__main__":
    main()
