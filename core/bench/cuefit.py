"""Refit the default cue model on the TUNING clips only (a tool, not runtime code).

Every decision the engine takes on a tuning clip is kept with its cues and labelled from
the clip's ground truth: the first decision at or after a sheet's stable frame and before
the next arm enters is a sheet (1); every other decision is not (0). The examples are fed
to :func:`core.counting.teach.fit` (from zero, weak L2) with and without the monotone
constraint, and both are printed with their precision/recall on the same examples.
Held-out sets are never read here. The random training corpus and the hard corpus are
rendered on first use (~10–30 s a clip on 2 cores) into ``data/cache/bench/stacking_train`` and
``data/cache/bench/stacking_hard70000``.

The default model's ``span`` weight (session 6) was fitted with every other weight held
(bias and span weight only, on these examples): a full refit moved ``final_change`` from −4.2
to +1.1 and counted hovering arms on the training corpus.

    $ python -m core.bench.cuefit            # prints JSON: examples, both fits, scores
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from core.platform.paths import Paths

TRAIN_CLIPS = 96     # clips of the stacking renderer's random training corpus (core.synthetic.stacking.train_specs)
HARD_CLIPS, HARD_SEED0 = 48, 70000   # ... and of its hard corpus (train_specs(hard=True)), added in session 6


def tuning_specs() -> dict[str, tuple[Path, Any]]:
    """(cache folder, spec) of every tuning clip: the stacking renderer's tuning set and its
    random training corpus (:func:`core.synthetic.stacking.train_specs`, :data:`TRAIN_CLIPS`
    clips), the project renderer's bench tuning set (``bench count``'s fixed set) and its
    test set (seed 0) and quick set (seed 21) at 320×240, and the stacking renderer's hard
    corpus (``train_specs(hard=True)``, :data:`HARD_CLIPS` clips)."""
    from core.bench.count import bench_specs, quick_specs
    from core.synthetic import stacking
    from core.synthetic.clips import presets
    root = Paths.from_env().cache / "bench"
    out: dict[str, tuple[Path, Any]] = {}
    for n, s in stacking.set_specs("tune").items():
        out[n] = (root / "stacking_tune", s)
    for n, s in stacking.train_specs(TRAIN_CLIPS).items():
        out[n] = (root / "stacking_train", s)
    for n, s in stacking.train_specs(HARD_CLIPS, seed0=HARD_SEED0, hard=True).items():
        out[f"hard_{n}"] = (root / f"stacking_hard{HARD_SEED0}", s)
    for n, s in bench_specs().items():
        out[n] = (root, s)
    for n, s in quick_specs().items():
        out[n] = (root, s)
    for n, s in presets(320, 240, 15, seed=0).items():
        out[f"{n}_240p_s0"] = (root / "fit_seed0", s)
    return out


def decisions(path: str) -> list[Any]:
    """Every decision of the default engine over a whole file (frame, cues)."""
    from core.counting.engine import CountingEngine
    from core.live.sources import open_source
    from core.platform.settings import CountingSettings
    eng = CountingEngine(CountingSettings())
    out, last = [], None
    src = open_source(path, max_reconnects=0)
    try:
        for fr in src:
            eng.update(fr.image, fr.index, fr.t)
            if eng.last_decision is not None and eng.last_decision is not last:
                last = eng.last_decision
                out.append(last)
    finally:
        src.close()
    return out


def label(truth: Any, decs: list[Any]) -> list[int]:
    """1 for the first decision in each sheet's window (as ``bench count`` scores), else 0."""
    y = [0] * len(decs)
    evs = sorted(truth.events, key=lambda e: e.stable_frame)
    for gt in truth.sheet_events:
        nxt = [e.enter_frame for e in evs if e.enter_frame > gt.stable_frame]
        end = min(nxt) if nxt else 10 ** 9
        for i, d in enumerate(decs):
            if y[i] == 0 and gt.stable_frame <= d.frame < end + 1:
                y[i] = 1
                break
    return y


def collect() -> tuple[list[dict[str, float]], list[int], list[str]]:
    from core.bench.count import _cached
    X: list[dict[str, float]] = []
    Y: list[int] = []
    names: list[str] = []
    for n, (folder, spec) in tuning_specs().items():
        folder.mkdir(parents=True, exist_ok=True)
        truth = _cached(n if folder.name != "fit_seed0" else n, spec, folder, False)
        decs = decisions(truth.path)
        y = label(truth, decs)
        for d, v in zip(decs, y):
            if d.cues:
                X.append({k: v2 for k, v2 in d.cues.items() if k != "detector"})
                Y.append(v)
                names.append(f"{n}@{d.frame}")
        print(f"{n}: {len(decs)} decisions, {sum(y)}/{len(truth.sheet_events)} sheets labelled", file=sys.stderr)
    return X, Y, names


def last_weight_only(X: list[dict[str, float]], Y: list[int], model: Any, l2: float = 0.1) -> Any:
    """``model`` with its LAST weight (the newest cue's) and its bias refitted, every other
    weight held (penalised logistic loss, last weight ≥ 0): how session 6 added ``span``."""
    import numpy as np
    from scipy.optimize import minimize

    from core.counting.cues import CueModel, Cues, features
    F = np.array([features(Cues.from_dict(x)) for x in X])
    y = np.asarray(Y, np.float64)
    w = np.array(model.weights, np.float64)
    w[-1] = 0.0
    z0 = F @ w + model.bias

    def loss(v: Any) -> float:
        z = z0 + v[0] * F[:, -1] + v[1]
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * (v[0] ** 2 + 0.1 * v[1] ** 2))
    r = minimize(loss, [0.0, 0.0], bounds=[(0.0, None), (None, None)])
    return CueModel(weights=list(w[:-1]) + [round(float(r.x[0]), 3)], bias=round(float(model.bias + r.x[1]), 3),
                    threshold=model.threshold, source="default")


def main(argv: list[str]) -> int:
    from core.counting.cues import FEATURE_NAMES, MONOTONE_FEATURES, CueModel, Cues
    from core.counting.teach import evaluate, fit
    cache = Paths.from_env().cache / "bench" / "cuefit_examples.json"
    if "--reuse" in argv and cache.exists():
        d = json.loads(cache.read_text())
        X, Y, names = d["X"], d["Y"], d["names"]
    else:
        X, Y, names = collect()
        cache.write_text(json.dumps({"X": X, "Y": Y, "names": names}))
    zero = CueModel(weights=[0.0] * len(FEATURE_NAMES), bias=0.0)
    free = fit(X, Y, prior=zero, l2=0.1, source="default", nonneg=())
    mono = fit(X, Y, prior=zero, l2=0.1, source="default", nonneg=MONOTONE_FEATURES)
    from core.counting.cues import DEFAULT_MODEL
    last = last_weight_only(X, Y, DEFAULT_MODEL)
    out = {"examples": len(Y), "positives": sum(Y), "current_default": evaluate(DEFAULT_MODEL, X, Y).to_dict(),
           "unconstrained": free.to_dict(), "monotone": mono.to_dict(),
           "last_weight_only": {"model": last.to_dict(), "scores": evaluate(last, X, Y).to_dict()},
           "errors_monotone": [names[i] for i, (x, y) in enumerate(zip(X, Y))
                               if (mono.model.prob(Cues.from_dict(x))
                                   >= mono.model.threshold) != bool(y)]}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
