"""Issue 12 throughput: the verifier's speed-ups (work buffers kept from one decision to the
next, arithmetic in place, the background's half-size image kept) must not change a single
figure. The references below are the plain formulas the faster code replaced."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.counting import cues
from core.counting.engine import Change, CountingEngine, ModelFreeVerifier
from core.platform.settings import CountingSettings
from core.synthetic.clips import presets, render_clip

from live_clips import read_frames


def _pair(seed: int, h: int = 240, w: int = 320, dtype=np.float32):
    """Two registered grey images of a textured stack: ``b`` has a new textured sheet laid a
    few px off, a soft shadow and noise (every cue has something to measure)."""
    rng = np.random.default_rng(seed)
    a = cv2.GaussianBlur(rng.normal(110, 25, (h, w)).astype(np.float32), (0, 0), 1.0)
    b = a + rng.normal(0, 1.5, (h, w)).astype(np.float32)
    y, x = 50 + seed % 7, 60 + seed % 5
    b[y:y + 120, x:x + 170] = cv2.GaussianBlur(rng.normal(150, 20, (120, 170)).astype(np.float32), (0, 0), 0.8)
    yy, xx = np.mgrid[0:h, 0:w]
    b -= 25 * np.exp(-((xx - 250.0) ** 2 + (yy - 60.0) ** 2) / (2 * 30.0 ** 2)).astype(np.float32)
    return a.astype(dtype), b.astype(dtype)


def _ref_edges(img):
    g = cv2.GaussianBlur(img, (0, 0), 1.2)
    return cv2.Canny(np.clip(g, 0, 255).astype(np.uint8), 12, 30, L2gradient=True) > 0


def _ref_outline(a, b, valid=None):
    ea, eb = _ref_edges(a), _ref_edges(b)
    if valid is not None:
        ea &= valid
        eb &= valid
    k3 = np.ones((3, 3), np.uint8)
    da, db = cv2.dilate(ea.astype(np.uint8), k3) > 0, cv2.dilate(eb.astype(np.uint8), k3) > 0
    h, w = a.shape
    min_len = max(8, int(0.04 * max(h, w)))

    def long_(m):
        n, lab, st, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), 8)
        keep = np.maximum(st[:, cv2.CC_STAT_WIDTH], st[:, cv2.CC_STAT_HEIGHT]) >= min_len
        keep[0] = False
        return keep[lab]
    new, lost, kept = long_(eb & ~da), long_(ea & ~db), ea & db
    n_new = float(new.sum())
    par = 0.0
    if n_new:
        near = cv2.dilate(kept.astype(np.uint8), np.ones((21, 21), np.uint8)) > 0
        par = float((new & near).sum()) / n_new
    box = cues._bbox(new) if n_new else None
    return n_new / (h + w), float(lost.sum()) / (h + w), par, box


def _ref_thin(a, b, thr=10.0, valid=None, full_sigma4=False):
    d = b - a
    h, w = d.shape
    if full_sigma4:      # the 25-tap σ 4 filter the cue used until session 16
        low = cv2.GaussianBlur(d, (25, 25), 4.0)     # σ 4 cut at 3σ
    else:                # σ 4 by way of half resolution, as the cue takes it now
        low = cv2.pyrUp(cv2.GaussianBlur(cv2.pyrDown(d), (0, 0), 1.87), dstsize=(w, h))
    dog = cv2.GaussianBlur(d, (0, 0), 1.0) - low
    m = (np.abs(dog) > thr).astype(np.uint8)
    if valid is not None:
        m &= valid.astype(np.uint8)
    if not m.any():
        return 0.0
    thick = cv2.dilate(cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((7, 7), np.uint8)), np.ones((5, 5), np.uint8))
    thin = (m > 0) & (thick == 0)
    h, w = a.shape
    n, _lab, st, _ = cv2.connectedComponentsWithStats(thin.astype(np.uint8), 8)
    keep = np.maximum(st[:, cv2.CC_STAT_WIDTH], st[:, cv2.CC_STAT_HEIGHT]) >= max(8, int(0.05 * max(h, w)))
    keep[0] = False
    return float(st[keep, cv2.CC_STAT_AREA].sum()) / float(h + w)


def _ref_sharpness(a, b, region):
    bx, by, bw, bh = cues._bbox(region)
    y1, y2 = max(0, by - 16), min(region.shape[0], by + bh + 16)
    x1, x2 = max(0, bx - 16), min(region.shape[1], bx + bw + 16)
    a, b, region = a[y1:y2, x1:x2], b[y1:y2, x1:x2], region[y1:y2, x1:x2]
    d = cv2.GaussianBlur(100.0 * (np.log(np.maximum(b, 0) + 8.0) - np.log(np.maximum(a, 0) + 8.0)), (0, 0), 1.2)
    g = np.abs(cv2.Sobel(d, cv2.CV_32F, 1, 0, ksize=3) / 8.0) + np.abs(cv2.Sobel(d, cv2.CV_32F, 0, 1, ksize=3) / 8.0)
    r8 = region.astype(np.uint8)
    k = np.ones((7, 7), np.uint8)
    border = (cv2.dilate(r8, k) > 0) & (cv2.erode(r8, k) == 0)
    inner = cv2.erode(r8, k) > 0
    level = float(np.median(np.abs(d[inner]))) if inner.any() else float(np.median(np.abs(d[region])))
    edge = float(np.percentile(g[border], 90)) if border.any() else 0.0
    return edge / (level + 2.0)


@pytest.mark.parametrize("seed", range(4))
def test_in_place_cue_arithmetic_gives_the_plain_formulas_figures(seed):
    """Bit for bit, with one work-buffer set reused across all calls (as a verifier does), with
    a counted-area mask, and for float64 input too."""
    ws = cues.Scratch()
    a, b = _pair(seed)
    valid = np.ones(a.shape, bool)
    valid[:, :40] = False
    for v in (None, valid):
        assert cues.outline_cues(a, b, v, with_box=True, ws=ws) == _ref_outline(a, b, v)
        assert cues.outline_cues(a, b, v, with_box=True) == _ref_outline(a, b, v)
        assert cues.thin_outline(a, b, valid=v, ws=ws) == _ref_thin(a, b, valid=v)
    a64, b64 = _pair(seed, dtype=np.float64)
    assert cues.thin_outline(a64, b64, ws=ws) == _ref_thin(a64, b64)
    # the half-resolution σ 4 keeps the figure of the 25-tap filter it replaced (within 3 %)
    old = _ref_thin(a, b, full_sigma4=True)
    assert old > 0.5 and abs(cues.thin_outline(a, b, ws=ws) - old) <= 0.03 * old
    region = np.zeros(a.shape, bool)
    region[48:176, 56:240] = True
    assert cues.edge_sharpness(a, b, region) == _ref_sharpness(a, b, region)
    win = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    x = a * win
    ref = cv2.GaussianBlur(x, (0, 0), 0.8) - cv2.GaussianBlur(x, (19, 19), 3.0)     # σ 3 cut at 3σ
    assert np.array_equal(ModelFreeVerifier._bandpass(a, win, ws), ref)
    assert np.array_equal(a * win, x), "the band-pass changed its input"


class _FreshVerifier(ModelFreeVerifier):
    """Every decision by a brand-new verifier: no background cache, no kept half image, no
    work buffers from an earlier decision."""

    def verify(self, before, after, change):
        return ModelFreeVerifier(model=self.model).verify(before, after, change)


@pytest.mark.parametrize("name", ["fast_feed", "shake_noise", "exact_on_top"])
def test_kept_buffers_decide_exactly_as_a_fresh_verifier(tmp_path, name):
    """A whole clip through the engine: the verifier that keeps its buffers and figures from
    decision to decision takes the same decisions, with the same cues, confidence and reason,
    as one made afresh for every decision (a buffer overwritten while still in use, or an input
    windowed in place by OpenCV, would show here)."""
    truth = render_clip(presets(320, 240, 15, seed=5)[name], tmp_path / f"{name}.mp4")
    frames = read_frames(truth.path)

    def run(verifier):
        eng = CountingEngine(CountingSettings(), verifier, copy_frames=False)
        for i, f in enumerate(frames):
            if eng.wants(i / truth.fps):
                eng.update(f, i, i / truth.fps)
        return [(d.frame, d.accept, d.confidence, d.reason, d.cues) for d in eng.decisions]

    kept, fresh = run(ModelFreeVerifier()), run(_FreshVerifier())
    assert len(kept) >= 2
    assert kept == fresh


def test_background_half_image_is_kept_only_for_the_same_frame():
    """The next decision reuses the half-size image of the frame it takes as background; a
    different background (re-learned while idle) gets its own."""
    rng = np.random.default_rng(4)
    f0, f1, f2 = (cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 1.5)
                  for _ in range(3))
    v = ModelFreeVerifier()
    ch = Change(roi=[0, 0, 320, 240])
    v.verify(f0, f1, ch)
    kept = v._half
    assert kept is not None and v._cache is not None and kept[0] is v._cache[1]
    assert v.verify(f1, f2, ch).cues == ModelFreeVerifier().verify(f1, f2, ch).cues     # kept
    assert v._half is not None and v._half[0] is v._cache[1]
    assert v.verify(f0, f1, ch).cues == ModelFreeVerifier().verify(f0, f1, ch).cues     # not kept: f2's
