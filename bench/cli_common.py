"""Command-line pieces every benchmark script shares: list arguments, the end-of-run printout
and the "re-print / re-plot a results JSON" entry point of the report modules."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable


def int_list(s: str) -> list[int]:
    """argparse type: "16,32,64" -> [16, 32, 64]."""
    return [int(x) for x in s.split(",") if x.strip()]


def float_list(s: str) -> list[float]:
    """argparse type: "0.5,0.1" -> [0.5, 0.1]."""
    return [float(x) for x in s.split(",") if x.strip()]


def print_run(res: dict, echo: Callable[[str], None] = print) -> None:
    """Prints a suite's tables, skipped libraries and output paths with ``echo``."""
    for table in res["tables"].values():
        echo(table + "\n")
    for name, why in res["meta"]["skipped"].items():
        echo(f"skipped {name}: {why}")
    if res["out"]:
        echo(f"results: {res['out']}" + (f"  plot: {res['plot']}" if res["plot"] else ""))


def reprint_main(description: str, tables: Callable, plot_rows: Callable,
                 argv: list[str] | None = None) -> None:
    """Re-prints the tables of a results JSON and redraws its PNG."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("results", help="JSON written by the benchmark")
    p.add_argument("-o", "--out", help="PNG path (default: next to the JSON)")
    a = p.parse_args(argv)
    data = json.loads(Path(a.results).read_text())
    for t in tables(data["rows"], data["meta"]).values():
        print(t + "\n")
    out = a.out or str(Path(a.results).with_suffix(".png"))
    print(plot_rows(data["rows"], out, data["meta"]["dataset"]["name"]))
