"""Teach mode (issue 12, item 5) below the page: cycles stored with their cues on a real
SQLite database, operator ±1 corrections kept as labelled examples, a station fit with
precision/recall before/after, saved through the audited settings path and undone."""
from __future__ import annotations

import numpy as np
import pytest

from core.counting.cues import DEFAULT_MODEL, FEATURE_NAMES, Cues
from core.counting.engine import CountingEngine, ModelFreeVerifier, make_verifier
from core.live import cycles, sessions
from core.platform.engineering import audit_trail


def _station_cycles(db, sid, n=12, seed=0):
    """A station whose identical smooth sheets change nothing but a thin outline: the
    default rule misses some; the cues still separate them."""
    rng = np.random.default_rng(seed)
    ids = []
    for i in range(n):
        sheet = i % 2 == 0
        c = Cues(outline=rng.uniform(0.5, 0.9) if sheet else rng.uniform(0.0, 0.05),
                 carried=rng.uniform(0.1, 0.14) if sheet else rng.uniform(0.03, 0.06),
                 swept=rng.uniform(0.2, 0.3) if sheet else rng.uniform(0.05, 0.1))
        p = DEFAULT_MODEL.prob(c)
        ids.append((cycles.record(db, sid, frame=10 * i, t=i, accepted=p >= 0.5, probability=p, reason="r",
                                  cues=c.to_dict()), sheet))
    return ids


def test_corrections_become_labelled_examples(db, paths):
    st = sessions.start_session(db, paths, "Batch-T", 10)
    a = cycles.record(db, st.id, frame=5, t=0.5, accepted=True, probability=0.9, reason="count", cues={"tex_area": 0.3})
    b = cycles.record(db, st.id, frame=9, t=0.9, accepted=False, probability=0.2, reason="no", cues={"tex_area": 0.01})
    sessions.correct_count(db, st.id, +1, "missed one under the arm", user="op")     # b was a sheet
    sessions.correct_count(db, st.id, -1, "that was a hand", user="op")               # a was not
    ex, y = cycles.examples(db)
    assert y == [0, 1] and ex[0]["tex_area"] == 0.3
    got = {c.id: (c.label, c.label_source) for c in cycles.recent(db)}
    assert got[a] == (0, "operator") and got[b] == (1, "operator")


def test_fit_shows_figures_then_save_and_undo_are_audited(db, paths):
    st = sessions.start_session(db, paths, "Batch-F", 10)
    ids = _station_cycles(db, st.id)
    with pytest.raises(ValueError, match="AND without"):
        cycles.fit_station(db)                          # nothing confirmed yet
    for cid, sheet in ids:                             # the engineer confirms the true count
        cycles.set_label(db, cid, 1 if sheet else 0)
    r = cycles.fit_station(db)
    assert r.after.recall == 1.0 and r.after.precision == 1.0
    assert r.after.tp >= r.before.tp and r.before.positives == 6
    assert db.load_settings().counting.cue_model is None   # nothing saved by a fit
    changed = cycles.save_fit(db, r.model, who="eng")
    assert changed == ["counting.cue_model"]
    cm = db.load_settings().counting.cue_model
    assert cm["weights"] == r.model.weights and len(cm["weights"]) == len(FEATURE_NAMES)
    v = make_verifier(db.load_settings().counting)
    assert isinstance(v, ModelFreeVerifier) and v.model.weights == r.model.weights
    assert audit_trail(db, key_prefix="counting.cue_model")[0].who == "eng"
    prev = cycles.undo_fit(db, who="eng")
    assert prev is None and db.load_settings().counting.cue_model is None
    assert len(audit_trail(db, key_prefix="counting.cue_model")) == 2


def test_live_engine_takes_a_saved_model_at_once(db):
    eng = CountingEngine(db.load_settings().counting)
    assert eng.verifier.model is DEFAULT_MODEL
    cfg = db.load_settings().counting
    cfg.cue_model = {"weights": [1.0] * len(FEATURE_NAMES), "bias": -2.0, "threshold": 0.6}
    eng.apply_settings(cfg)
    assert eng.verifier.model.threshold == 0.6
    cfg.cue_model = {"weights": [1.0, 2.0], "bias": 0.0}     # fitted for other cues: ignored
    eng.apply_settings(cfg)
    assert eng.verifier.model is DEFAULT_MODEL


def test_a_bad_cue_model_is_refused_by_validation(db):
    s = db.load_settings()
    s.counting.cue_model = {"weights": "x"}
    assert any("cue_model" in e for e in s.validate())


def test_monotone_fit_keeps_new_surface_cues_for_a_sheet():
    """``nonneg``: cycles in which a clearly new tone came with NO sheet (and sheets with a
    weak tone) pull the free fit's tone weight below zero; the constrained fit keeps it at
    ≥ 0 for every cue that shows a new surface, and still separates the examples."""
    from core.counting.cues import MONOTONE_FEATURES
    from core.counting.teach import fit
    rng = np.random.default_rng(3)
    ex, y = [], []
    for i in range(40):
        sheet = i % 2 == 0
        c = Cues(tex_area=rng.uniform(0.1, 0.3) if sheet else rng.uniform(0.0, 0.02),
                 tone_area=rng.uniform(0.0, 0.05) if sheet else rng.uniform(0.1, 0.4),
                 swept=rng.uniform(0.2, 0.4) if sheet else rng.uniform(0.0, 0.1))
        ex.append(c.to_dict())
        y.append(int(sheet))
    zero = DEFAULT_MODEL.__class__(weights=[0.0] * len(FEATURE_NAMES), bias=0.0)
    free = fit(ex, y, prior=zero, l2=0.1)
    mono = fit(ex, y, prior=zero, l2=0.1, nonneg=MONOTONE_FEATURES)
    tone = FEATURE_NAMES.index("tone_area")
    assert free.model.weights[tone] < -0.1                 # the data alone says "tone against"
    for n in MONOTONE_FEATURES:
        assert mono.model.weights[FEATURE_NAMES.index(n)] >= 0.0
    assert mono.model.weights[tone] < 1e-6
    assert mono.after.recall == 1.0 and mono.after.precision == 1.0
    assert set(MONOTONE_FEATURES) <= set(FEATURE_NAMES)


def test_the_newest_cue_is_fitted_with_every_other_weight_held():
    """``cuefit``'s ``last_weight_only`` (how the default rule took its ``span`` weight): only
    the last weight and the bias move; a cue that separates sheets the rule missed gets a
    positive weight, and the fitted rule counts them."""
    from core.bench.cuefit import last_weight_only
    from core.counting.cues import CueModel
    rng = np.random.default_rng(3)
    X, Y = [], []
    for i in range(200):
        sheet = i % 2 == 0
        c = Cues(came_not_left=rng.uniform(0.03, 0.06) if sheet else rng.uniform(0.0, 0.02),
                 span=rng.uniform(0.15, 0.3) if sheet else rng.uniform(0.0, 0.08), swept=rng.uniform(0.1, 0.4))
        X.append(c.to_dict())
        Y.append(int(sheet))
    base = CueModel(weights=list(DEFAULT_MODEL.weights[:-1]) + [0.0], bias=DEFAULT_MODEL.bias)
    m = last_weight_only(X, Y, base)
    assert m.weights[:-1] == base.weights[:-1] and m.weights[-1] > 1.0
    before = sum(base.prob(Cues.from_dict(x)) >= 0.5 for x, y in zip(X, Y) if y)
    after = sum(m.prob(Cues.from_dict(x)) >= 0.5 for x, y in zip(X, Y) if y)
    false = sum(m.prob(Cues.from_dict(x)) >= 0.5 for x, y in zip(X, Y) if not y)
    assert before < 50 and after >= 90 and false <= 5
