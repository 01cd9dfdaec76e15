"""Teach mode's fit: labelled cycles in, a cue model and its precision/recall out (pure).

Each example is one decision's cues (:class:`core.counting.cues.Cues` as a dict) and the
truth an engineer or operator confirmed: 1 = a sheet was laid in that cycle, 0 = not.
:func:`fit` fits the logistic model of :mod:`core.counting.cues` (L2-regularised Newton
steps, pulled towards the current model so that a few examples nudge it rather than
replace it) and picks the threshold with the best F1 on the examples; :func:`evaluate`
gives precision/recall of any model on the same examples, so the page can show "before"
and "after" before anything is saved.

>>> from core.counting.cues import Cues, DEFAULT_MODEL
>>> pos = [Cues(tex_area=0.2, tone_area=0.1, new_edges=0.4, carried=0.3).to_dict() for _ in range(6)]
>>> neg = [Cues(same_surface=1.0, carried=0.05).to_dict() for _ in range(6)]
>>> r = fit(pos + neg, [1] * 6 + [0] * 6)
>>> r.after.precision, r.after.recall
(1.0, 1.0)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

import numpy as np

from core.counting.cues import DEFAULT_MODEL, FEATURE_NAMES, CueModel, Cues, features


@dataclass
class Scores:
    n: int
    positives: int
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "precision": round(self.precision, 4), "recall": round(self.recall, 4)}


@dataclass
class FitResult:
    model: CueModel
    before: Scores          # the current model on the examples
    after: Scores           # the fitted model on the same examples

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "before": self.before.to_dict(), "after": self.after.to_dict()}


def _matrix(examples: Sequence[dict[str, Any]]) -> np.ndarray:
    return np.array([features(Cues.from_dict(e)) for e in examples], np.float64).reshape(len(examples), len(FEATURE_NAMES))


def evaluate(model: CueModel, examples: Sequence[dict[str, Any]], labels: Sequence[int]) -> Scores:
    y = np.asarray(labels, int)
    pred = np.array([model.prob(Cues.from_dict(e)) >= model.threshold for e in examples], bool)
    return Scores(n=len(y), positives=int(y.sum()), tp=int(np.sum(pred & (y == 1))),
                  fp=int(np.sum(pred & (y == 0))), fn=int(np.sum(~pred & (y == 1))))


def _fit_bounded(Xb: np.ndarray, y: np.ndarray, w0: np.ndarray, R: np.ndarray, lo: list[int],
                 iters: int) -> np.ndarray:
    """The same penalised logistic loss, minimised with the weights at ``lo`` bounded ≥ 0
    (scipy's L-BFGS-B: a projected Newton step is not guaranteed to descend)."""
    from scipy.optimize import minimize

    def f(v: np.ndarray) -> tuple[float, np.ndarray]:
        z = Xb @ v
        p = 0.5 * (1.0 + np.tanh(0.5 * z))        # σ(z) without overflow
        val = float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * (v - w0) @ R @ (v - w0))
        return val, Xb.T @ (p - y) + R @ (v - w0)

    bounds = [(0.0, None) if i in lo else (None, None) for i in range(len(w0))]
    start = np.array([max(0.0, v) if i in lo else v for i, v in enumerate(w0)], np.float64)
    r = minimize(f, start, jac=True, method="L-BFGS-B", bounds=bounds,
                 options={"maxiter": max(200, 20 * iters), "gtol": 1e-8, "ftol": 1e-12})
    return np.asarray(r.x, np.float64)


def fit(examples: Sequence[dict[str, Any]], labels: Sequence[int], prior: Optional[CueModel] = None,
        l2: float = 1.0, iters: int = 100, source: str = "station",
        nonneg: Sequence[str] = ()) -> FitResult:
    """Fit the cue model to labelled cycles. ``l2`` pulls the weights towards ``prior``
    (the current model): with few examples the fit stays close to it.

    The weights of the features named in ``nonneg`` are kept ≥ 0 (scipy's L-BFGS-B on the
    same loss). ``nonneg=MONOTONE_FEATURES`` (:data:`core.counting.cues.MONOTONE_FEATURES`)
    makes the cues that show a new surface (texture, tone, outline, new edges, swept area,
    a carried object) count only FOR a sheet. Off by default: on the tuning clips the
    constrained fit scored the same as the free one (``python -m core.bench.cuefit``), so
    the default model and station fits stay unconstrained."""
    if len(examples) != len(labels) or not examples:
        raise ValueError("need as many labels as examples, and at least one")
    prior = prior or DEFAULT_MODEL
    X = _matrix(examples)
    y = np.asarray(labels, np.float64)
    Xb = np.hstack([np.ones((len(X), 1)), X])
    w0 = np.array([prior.bias] + list(prior.weights), np.float64)
    w = w0.copy()
    R = np.eye(Xb.shape[1]) * l2
    R[0, 0] = l2 * 0.1            # the bias may move more freely
    def loss(v: np.ndarray) -> float:
        z = Xb @ v
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * (v - w0) @ R @ (v - w0))

    lo = [i + 1 for i, n in enumerate(FEATURE_NAMES) if n in set(nonneg)]
    if lo:
        w = _fit_bounded(Xb, y, w0, R, lo, iters)
    cur = loss(w)
    for _ in range(iters if not lo else 0):
        z = np.clip(Xb @ w, -50, 50)
        p = 1.0 / (1.0 + np.exp(-z))
        g = Xb.T @ (p - y) + R @ (w - w0)
        Hm = (Xb * (p * (1 - p))[:, None]).T @ Xb + R
        step = np.linalg.solve(Hm, g)
        a = 1.0
        while a > 1e-4:               # damped Newton: never accept a step that makes it worse
            cand = w - a * step
            new = loss(cand)
            if new <= cur:
                break
            a *= 0.5
        else:
            break
        w, done = cand, cur - new < 1e-9
        cur = new
        if done:
            break
    model = CueModel(weights=[float(v) for v in w[1:]], bias=float(w[0]), threshold=0.5, source=source)
    # threshold: best F1 on the examples, ties → closest to 0.5
    probs = np.array([model.prob(Cues.from_dict(e)) for e in examples])
    best = (-1.0, 0.0, 0.5)
    for t in np.linspace(0.2, 0.8, 25):
        pred = probs >= t
        tp = float(np.sum(pred & (y == 1)))
        f1 = 2 * tp / max(1.0, pred.sum() + y.sum())
        key = (f1, -abs(t - 0.5), t)
        if key > best:
            best = key
    model.threshold = float(round(best[2], 3))
    return FitResult(model=model, before=evaluate(prior, examples, labels), after=evaluate(model, examples, labels))
