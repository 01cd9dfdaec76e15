"""``python -m core bench decisions`` — every counting decision of the bench clips, recorded
and compared between two versions of the code.

A change meant to make counting cheaper must leave its decisions alone. ``record`` counts every
cached clip of the chosen sets with the default configuration and writes, per clip, the count
events and each decision's verdict, confidence, box and cues (JSON lines); ``compare`` reads two
such files (say, before and after the change) and tells which counts, verdicts, boxes and cues
differ. The newest held-out set is never recorded (it is looked at once, by ``bench count``).

    python -m core bench decisions record before.jsonl          # in the old checkout
    python -m core bench decisions record after.jsonl           # in the new one
    python -m core bench decisions compare before.jsonl after.jsonl

>>> c = Comparison(clips=2, decisions=5, events_differ=[], verdicts_differ=[], boxes_differ=0,
...                max_cue_diff={"outline": (0.25, "x")})
>>> c.same_decisions, c.summary().splitlines()[0]
(True, '2 clips, 5 decisions: the same counts and verdicts in every clip; boxes differ in 0')
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from core.counting.engine import ModelFreeVerifier, Verdict


class _Recorder(ModelFreeVerifier):
    """The default verifier (the engine's own, same settings), noting each verdict."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[Any]] = []

    def verify(self, before: Any, after: Any, change: Any) -> Verdict:
        v = super().verify(before, after, change)
        self.seen.append([bool(v.accept), round(float(v.confidence), 6), v.box, v.cues or {}])
        return v


def seen_sets() -> tuple[str, ...]:
    """The sets ``record`` reads by default: every set but the newest held-out one.

    >>> from core.bench.count import SETS
    >>> seen_sets() == SETS[:-1]
    True
    """
    from core.bench.count import SETS
    return SETS[:-1]


def _clips(renderers: tuple[str, ...], sets: tuple[str, ...], quick: bool,
           only: Optional[set[str]] = None) -> Iterator[tuple[str, Any]]:
    from core.bench.count import _cached, set_folder, set_specs
    from core.platform.paths import Paths
    root = Paths.from_env().cache / "bench"
    for r in renderers:
        for w in sets:
            folder = set_folder(root, r, w, quick)       # bench count's own cache
            folder.mkdir(parents=True, exist_ok=True)
            for name, spec in set_specs(r, w, quick).items():
                if only is None or name in only:
                    yield f"{r}/{w}/{name}", _cached(name, spec, folder, False)


def record(out: Path, renderers: tuple[str, ...] = ("clips", "stacking"), sets: Optional[tuple[str, ...]] = None,
           quick: bool = False, progress: Optional[Callable[[str], None]] = None,
           only: Optional[set[str]] = None) -> int:
    """Count each clip (``only``: these clip names alone) (rendered into the bench cache first if missing) and write one JSON line
    per clip: ``{"clip", "frames", "events": [frame...], "decisions": [[accept, p, box, cues]...]}``.
    Returns the number of clips."""
    from core.bench.count import SETS
    from core.live.count import count_video
    sets = seen_sets() if sets is None else sets
    if SETS[-1] in sets:
        raise ValueError(f"{SETS[-1]} is the fresh held-out set: bench count looks at it, once")
    n = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for key, truth in _clips(renderers, sets, quick, only):
            v = _Recorder()
            r = count_video(truth.path, verifier=v)
            fh.write(json.dumps({"clip": key, "frames": r.frames, "events": [e.frame for e in r.events],
                                 "decisions": v.seen}) + "\n")
            fh.flush()
            n += 1
            if progress:
                progress(key)
    return n


@dataclass
class Comparison:
    """How two recordings differ, over the clips both hold."""
    clips: int
    decisions: int
    events_differ: list[str]                    # clips whose count events (frames) differ
    verdicts_differ: list[str]                  # "clip #i" of decisions whose verdict or count differs
    boxes_differ: int
    max_cue_diff: dict[str, tuple[float, str]] = field(default_factory=dict)    # cue: (largest |Δ|, clip)
    only_in_one: list[str] = field(default_factory=list)

    @property
    def same_decisions(self) -> bool:
        return not self.events_differ and not self.verdicts_differ

    def summary(self) -> str:
        head = f"{self.clips} clips, {self.decisions} decisions: "
        if self.same_decisions:
            head += "the same counts and verdicts in every clip"
        else:
            head += (f"counts differ in {len(self.events_differ)} clips, verdicts in "
                     f"{len(self.verdicts_differ)} decisions")
        lines = [head + f"; boxes differ in {self.boxes_differ}"]
        lines += [f"  {k}: largest cue difference {d:.6g} ({c})" for k, (d, c) in sorted(self.max_cue_diff.items())
                  if d > 0]
        lines += [f"  counts differ: {c}" for c in self.events_differ[:20]]
        lines += [f"  verdict differs: {c}" for c in self.verdicts_differ[:20]]
        if self.only_in_one:
            lines.append(f"  {len(self.only_in_one)} clips in one recording only (not compared)")
        return "\n".join(lines)


def _load(path: Path) -> dict[str, dict[str, Any]]:
    rows = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                r = json.loads(line)
                rows[r["clip"]] = r
    return rows


def compare(a_path: Path, b_path: Path) -> Comparison:
    """Compare two recordings clip by clip and decision by decision.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); a, b = Path(d, "a.jsonl"), Path(d, "b.jsonl")
    >>> _ = a.write_text(json.dumps({"clip": "c", "events": [5], "decisions": [[True, 0.9, [0, 0, 4, 4], {"x": 1.0}]]}))
    >>> _ = b.write_text(json.dumps({"clip": "c", "events": [5], "decisions": [[True, 0.9, [0, 0, 4, 5], {"x": 1.5}]]}))
    >>> c = compare(a, b); c.same_decisions, c.boxes_differ, c.max_cue_diff["x"]
    (True, 1, (0.5, 'c'))
    """
    a, b = _load(a_path), _load(b_path)
    common = sorted(set(a) & set(b))
    out = Comparison(clips=len(common), decisions=0, events_differ=[], verdicts_differ=[], boxes_differ=0,
                     only_in_one=sorted(set(a) ^ set(b)))
    for clip in common:
        ra, rb = a[clip], b[clip]
        if ra["events"] != rb["events"]:
            out.events_differ.append(clip)
        da, db = ra["decisions"], rb["decisions"]
        if len(da) != len(db):
            out.verdicts_differ.append(f"{clip} ({len(da)} decisions against {len(db)})")
        for i, (x, y) in enumerate(zip(da, db)):
            out.decisions += 1
            if x[0] != y[0]:
                out.verdicts_differ.append(f"{clip} #{i + 1}")
            if x[2] != y[2]:
                out.boxes_differ += 1
            for k in set(x[3]) | set(y[3]):
                diff = abs(float(x[3].get(k, 0.0)) - float(y[3].get(k, 0.0)))
                if diff > out.max_cue_diff.get(k, (0.0, ""))[0]:
                    out.max_cue_diff[k] = (diff, clip)
    return out


def bench_decisions(argv: list[str]) -> int:
    """Every counting decision of the bench clips recorded, or two recordings compared.

    ``python -m core bench decisions record OUT | compare A B``: all sets but the newest
    held-out one by default. Exit 0; ``compare`` exits 1 when a count or verdict differs."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m core bench decisions", description=bench_decisions.__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    rec = sub.add_parser("record", help="count every clip and write its decisions (JSON lines)")
    rec.add_argument("out", help="output file (.jsonl)")
    rec.add_argument("--renderer", choices=("clips", "stacking", "all"), default="all")
    rec.add_argument("--set", action="append", choices=seen_sets(), help="a set (repeatable; default: every seen set)")
    rec.add_argument("--quick", action="store_true", help="the CI-size variants of the sets")
    rec.add_argument("--only", action="append", metavar="CLIP", help="only this clip (repeatable)")
    cmp_ = sub.add_parser("compare", help="compare two recordings")
    cmp_.add_argument("a")
    cmp_.add_argument("b")
    a = ap.parse_args(argv)
    if a.what == "record":
        renderers = ("clips", "stacking") if a.renderer == "all" else (a.renderer,)
        n = record(Path(a.out), renderers, tuple(a.set) if a.set else None, a.quick,
                   progress=lambda k: print(k, flush=True), only=set(a.only) if a.only else None)
        print(f"recorded {n} clips in {a.out}")
        return 0
    for p in (a.a, a.b):
        if not Path(p).is_file():
            ap.error(f"no such recording: {p}")
    c = compare(Path(a.a), Path(a.b))
    print(c.summary())
    return 0 if c.same_decisions else 1
