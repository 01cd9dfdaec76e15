"""``python -m core synth`` — picks the renderer: the project's own (``clips``, the default,
unchanged options and output) or the independent one (``--renderer stacking --set tune|heldout
[--quick]``), which prints the same JSON list of rendered clips.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _split_renderer(argv: list[str]) -> tuple[str, list[str]]:
    """(renderer, remaining argv).

    >>> _split_renderer(["--out", "d", "--renderer", "stacking"])
    ('stacking', ['--out', 'd'])
    >>> _split_renderer(["--renderer=clips", "--out", "d"])
    ('clips', ['--out', 'd'])
    >>> _split_renderer(["--out", "d"])
    ('clips', ['--out', 'd'])
    """
    rest, renderer, i = [], "clips", 0
    while i < len(argv):
        a = argv[i]
        if a == "--renderer" and i + 1 < len(argv):
            renderer, i = argv[i + 1], i + 2
            continue
        if a.startswith("--renderer="):
            renderer = a.split("=", 1)[1]
        else:
            rest.append(a)
        i += 1
    return renderer, rest


def cli_synth(argv: list[str]) -> int:
    renderer, rest = _split_renderer(argv)
    if renderer == "clips":
        from core.synthetic.clips import cli_synth as clips_cli
        return clips_cli(rest)
    if renderer != "stacking":
        print(f"error: unknown renderer '{renderer}'; choose clips or stacking", file=sys.stderr)
        return 2
    return cli_stacking(rest)


def cli_stacking(argv: list[str]) -> int:
    """``python -m core synth --renderer stacking --set tune|heldout --out DIR [--quick] [--only N,..]``."""
    from core.synthetic import stacking
    ap = argparse.ArgumentParser(prog="python -m core synth --renderer stacking",
                                 description="render the independent stacking renderer's tuning or held-out set")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--set", dest="which", default="tune",
                    choices=[*stacking.SET_NAMES, "train"],
                    help="train: the random training corpus the cue model is fitted on (96 clips)")
    ap.add_argument("--quick", action="store_true", help="the small CI-size set")
    ap.add_argument("--only", help="comma-separated clip names")
    ap.add_argument("--rebuild", action="store_true", help="render again even if the spec is unchanged")
    a = ap.parse_args(argv)
    specs = (stacking.train_specs(8 if a.quick else 96) if a.which == "train"
             else stacking.set_specs(a.which, a.quick))
    if a.only:
        keep = set(a.only.split(","))
        unknown = keep - set(specs)
        if unknown:
            print(f"error: unknown clip(s) {', '.join(sorted(unknown))}; choose from {', '.join(specs)}",
                  file=sys.stderr)
            return 2
        specs = {k: v for k, v in specs.items() if k in keep}
    out = Path(a.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: cannot create {out}: {e.strerror}", file=sys.stderr)
        return 2
    result = []
    for name, spec in specs.items():
        truth = stacking.cached_clip(spec, out, a.rebuild)
        result.append({"name": name, "path": truth.path, "expected_count": truth.expected_count,
                       "frames": truth.frames, "fps": truth.fps})
        print(f"rendered {name}: {truth.frames} frames, {truth.expected_count} sheets", file=sys.stderr)
    print(json.dumps(result))
    return 0
