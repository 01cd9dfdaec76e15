"""Benchmark figures that reach the README come from runs, never from memory.

A benchmark run with ``--record`` saves what it measured to ``docs/bench/<name>.json``: the
exact command, the data it ran on, the machine, the date, the raw figures and a one-line
summary built from them. ``python -m core bench readme`` rewrites the README's benchmark
block (between ``<!-- bench:start -->`` and ``<!-- bench:end -->``) from those files.

Example:
    >>> line = summary_line({"name": "measure", "command": "python -m core bench measure",
    ...                      "summary": "mean 0.07 %", "data": "40 renders", "date": "2026-11-30"})
    >>> line
    '| `python -m core bench measure` | 40 renders | mean 0.07 % | 2026-11-30 |'
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.platform.errors import CliParser
from core.platform.paths import PROJECT_ROOT

RESULTS_DIR = PROJECT_ROOT / "docs" / "bench"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
ORDER = ("count", "defects", "measure", "measure-stack", "models", "export", "rss", "viewers", "viewers-rtsp")


def add_record_arg(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--record", action="store_true",
                    help="save the figures to docs/bench/NAME.json (the README's benchmark table comes from there)")


def machine() -> str:
    try:
        import psutil
        mem = f", {psutil.virtual_memory().total / 2**30:.0f} GiB"
    except Exception:
        mem = ""
    return f"{platform.machine()}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def record(name: str, argv: list[str], data: str, figures: dict[str, Any], summary: str,
           out_dir: Path | None = None, command: str | None = None) -> Path:
    """Save one run's figures as ``name`` (``command``: the bench command when it differs)."""
    out_dir = out_dir or RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [a for a in argv if a != "--record"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    doc = {"name": name, "command": " ".join(["python -m core bench", command or name, *args]).strip(),
           "data": data, "machine": machine(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
           "load_avg_1min": None if load is None else round(load, 1),   # a busy machine slows every figure
           "summary": summary, "figures": figures}
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"recorded {path}", file=sys.stderr)
    return path


def summary_line(doc: dict[str, Any]) -> str:
    load = doc.get("load_avg_1min")
    when = doc["date"] + (f", load {load}" if load is not None else "")
    return f"| `{doc['command']}` | {doc['data']} | {doc['summary']} | {when} |"


def readme_block(results: Path | None = None) -> str:
    docs = []
    for p in sorted((results or RESULTS_DIR).glob("*.json")):
        d = json.loads(p.read_text(encoding="utf-8"))
        docs.append(d)
    docs.sort(key=lambda d: ORDER.index(d["name"]) if d["name"] in ORDER else len(ORDER))
    lines = [START, "", "| command (as run) | data | figures (from that run) | date, machine load |", "| --- | --- | --- | --- |"]
    lines += [summary_line(d) for d in docs]
    machines = sorted({d.get("machine", "") for d in docs})
    lines += ["", f"Machine: {'; '.join(machines)}. Raw figures: `docs/bench/*.json`. Regenerate: run a "
              "benchmark with `--record`, then `python -m core bench readme`.", "", END]
    return "\n".join(lines)


def cli_readme(argv: list[str]) -> int:
    """``python -m core bench readme [--readme README.md]``: rewrite the README's benchmark block."""
    ap = CliParser(prog="python -m core bench readme", description=cli_readme.__doc__)
    ap.add_argument("--readme", default=str(PROJECT_ROOT / "README.md"))
    a = ap.parse_args(argv)
    path = Path(a.readme)
    text = path.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"error: {path} has no {START} … {END} block", file=sys.stderr)
        return 2
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + readme_block() + tail, encoding="utf-8")
    print(f"rewrote the benchmark block of {path}", file=sys.stderr)
    return 0
