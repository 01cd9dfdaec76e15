"""Segmentation: turn each defect box into a precise mask.

Two segmenters share one interface — ``.name`` and ``.segment(image_bgr, boxes) ->
list[MaskResult]`` — and every result records which one made it:

* :class:`Sam2Segmenter` — the ``sam2`` package's ``SAM2ImagePredictor`` (hiera-tiny
  config), each box a prompt. Name ``sam2-hiera-tiny`` with a checkpoint from ``weights/``
  (e.g. ``weights/sam2.1_hiera_tiny.pt``), ``sam2-random-init`` when built from its config
  alone (plumbing tests only: its masks are meaningless). Runs without flash-attention on CPU.
* :class:`ModelFreeSegmenter` — name ``model-free``: inside the box (plus a margin) the
  background is modelled from the ring around the box (a fitted plane, so a lighting
  gradient does not read as a defect), pixels that deviate from it are thresholded
  (Otsu, with a noise floor), cleaned with morphology and holes filled.

:func:`load_segmenter` picks one. :func:`render_synthetic_defect` draws scratches,
patches, inclusions and pits with ground-truth masks on sheet textures, to measure the
model-free segmenter's IoU (``python -m core bench defects``).

Example:
    >>> import numpy as np
    >>> from core.synthetic.defects import render_synthetic_defect, sheet_texture   # test data
    >>> rng = np.random.default_rng(0)
    >>> img = sheet_texture(240, 320, rng)
    >>> gt, box = render_synthetic_defect(img, "patch", rng)
    >>> seg = load_segmenter(None)
    >>> seg.name
    'model-free'
    >>> r = seg.segment(img, [box])[0]
    >>> r.segmenter, r.mask.shape == (r.y2 - r.y1, r.x2 - r.x1)
    ('model-free', True)
    >>> mask_iou(r.full_mask(img.shape[:2]), gt) > 0.5
    True
"""
from __future__ import annotations

import gc
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from core.platform.log import get

log = get("segment")

SAM2_TINY_CFG = "configs/sam2.1/sam2.1_hiera_t.yaml"
SAM2_CKPT_NAMES = ("sam2.1_hiera_tiny.pt", "sam2_hiera_tiny.pt")
DEFECT_KINDS = ("scratch", "patch", "inclusion", "pit")


@dataclass
class MaskResult:
    """One box's mask, stored box-local (``mask`` covers ``[y1:y2, x1:x2]`` of the image).

    >>> m = MaskResult(np.ones((2, 3), bool), 4, 5, 7, 7, "model-free")
    >>> m.area_px, int(m.full_mask((10, 10)).sum())
    (6, 6)
    """
    mask: np.ndarray            # bool, (y2 - y1, x2 - x1)
    x1: int
    y1: int
    x2: int
    y2: int
    segmenter: str
    score: float = 1.0          # SAM 2's predicted IoU; 1.0 for the model-free segmenter
    fallback: bool = False      # True when nothing stood out and the mask is the box's ellipse

    @property
    def area_px(self) -> int:
        return int(self.mask.sum())

    @property
    def bbox(self) -> list[int]:
        return [self.x1, self.y1, self.x2, self.y2]

    def full_mask(self, shape: tuple[int, int]) -> np.ndarray:
        out = np.zeros(shape[:2], bool)
        out[self.y1:self.y2, self.x1:self.x2] = self.mask
        return out

    def tight(self) -> "MaskResult":
        """The same mask cropped to its own extent (the crop PNG uses it)."""
        ys, xs = np.nonzero(self.mask)
        if len(ys) == 0:
            return self
        return MaskResult(self.mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1], self.x1 + int(xs.min()),
                          self.y1 + int(ys.min()), self.x1 + int(xs.max()) + 1, self.y1 + int(ys.max()) + 1,
                          self.segmenter, self.score, self.fallback)


def _box_xyxy(b: Any) -> tuple[float, float, float, float]:
    """Accept a core.models.manager.Box, anything with ``xyxy``, or a 4-sequence."""
    if hasattr(b, "x1"):
        return float(b.x1), float(b.y1), float(b.x2), float(b.y2)
    if hasattr(b, "xyxy"):
        b = b.xyxy
    x1, y1, x2, y2 = (float(v) for v in list(b)[:4])
    return x1, y1, x2, y2


def _clip_box(b: Any, w: int, h: int) -> Optional[tuple[int, int, int, int]]:
    x1, y1, x2, y2 = _box_xyxy(b)
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    x1, y1 = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
    x2, y2 = min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2)))
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    return x1, y1, x2, y2


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Grayscale → BGR, BGRA → BGR, 16-bit → 8-bit; anything else is refused clearly."""
    if image is None or not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        raise ValueError("not an image (expected an H×W or H×W×C array)")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 3:
        return image
    raise ValueError(f"unsupported image with {image.shape[2]} channels")


# ----------------------------------------------------------------------------------------
# Model-free, box-prompted segmenter
# ----------------------------------------------------------------------------------------
class ModelFreeSegmenter:
    """Box-prompted segmentation with no model: background from the ring around the box,
    deviation thresholded, morphology, holes filled.

    Example:
        >>> seg = ModelFreeSegmenter()
        >>> img = np.full((100, 100, 3), 128, np.uint8); img[40:60, 30:70] = 60
        >>> r = seg.segment(img, [(25, 35, 75, 65)])[0]
        >>> abs(r.area_px - 800) <= 8        # the 20 × 40 patch, corners rounded by morphology
        True
    """
    name = "model-free"

    def __init__(self, margin: float = 0.25, min_margin: int = 6, k_sigma: float = 2.5, max_side: int = 384):
        self.margin = margin            # ring width as a fraction of the box side
        self.min_margin = min_margin
        self.k_sigma = k_sigma          # noise floor: deviations under k·σ of the ring are background
        self.max_side = max_side        # big boxes are worked on downscaled (speed), mask scaled back

    def segment(self, image_bgr: np.ndarray, boxes: Sequence[Any]) -> list[MaskResult]:
        img = as_bgr(image_bgr)
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        h, w = gray.shape
        out: list[MaskResult] = []
        for b in boxes:
            cb = _clip_box(b, w, h)
            if cb is None:
                out.append(MaskResult(np.zeros((0, 0), bool), 0, 0, 0, 0, self.name, 0.0, True))
                continue
            out.append(self._one(gray, *cb))
        return out

    def _one(self, gray: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> MaskResult:
        h, w = gray.shape
        bw, bh = x2 - x1, y2 - y1
        m = max(self.min_margin, int(round(self.margin * max(bw, bh))))
        rx1, ry1, rx2, ry2 = max(0, x1 - m), max(0, y1 - m), min(w, x2 + m), min(h, y2 + m)
        roi = gray[ry1:ry2, rx1:rx2].astype(np.float32)
        scale = min(1.0, self.max_side / max(roi.shape))
        if scale < 1.0:
            roi = cv2.resize(roi, (max(1, int(roi.shape[1] * scale)), max(1, int(roi.shape[0] * scale))),
                             interpolation=cv2.INTER_AREA)
        rh, rw = roi.shape
        # box inside the (possibly scaled) ROI
        bx1, by1 = int(round((x1 - rx1) * scale)), int(round((y1 - ry1) * scale))
        bx2, by2 = max(bx1 + 1, int(round((x2 - rx1) * scale))), max(by1 + 1, int(round((y2 - ry1) * scale)))
        inbox = np.zeros((rh, rw), bool)
        inbox[by1:by2, bx1:bx2] = True
        ring = ~inbox
        if ring.sum() < 20:  # box fills the image: use the box's own outer band as background
            band = max(1, int(0.1 * min(rh, rw)))
            ring = np.zeros((rh, rw), bool)
            ring[:band, :] = ring[-band:, :] = ring[:, :band] = ring[:, -band:] = True
        # smooth away sensor noise but keep thin scratches (σ ~ 1 px)
        sm = cv2.GaussianBlur(roi, (0, 0), 1.0)
        # background = plane fitted to the ring (handles lighting gradients)
        yy, xx = np.mgrid[0:rh, 0:rw].astype(np.float32)
        A = np.stack([np.ones(int(ring.sum()), np.float32), xx[ring] / max(rw, 1), yy[ring] / max(rh, 1)], 1)
        coef, *_ = np.linalg.lstsq(A, sm[ring], rcond=None)
        bg = coef[0] + coef[1] * xx / max(rw, 1) + coef[2] * yy / max(rh, 1)
        dev = sm - bg
        sigma = float(np.std(dev[ring])) + 1e-3
        # polarity: the side of the background where the box's strongest deviations lie
        inside = dev[inbox]
        hi, lo = np.percentile(inside, 97), np.percentile(inside, 3)
        d = dev if abs(hi) > abs(lo) else -dev
        d_in = np.clip(d[inbox], 0, None)
        floor = self.k_sigma * sigma
        mask = np.zeros((rh, rw), bool)
        if d_in.max() > floor:
            u8 = np.clip(d / max(d_in.max(), 1e-3) * 255, 0, 255).astype(np.uint8)
            t, _ = cv2.threshold(u8[inbox].reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
            otsu = t / 255.0 * d_in.max()
            core_px = d[inbox][d[inbox] > otsu]
            level = float(np.median(core_px)) if core_px.size else otsu
            # half-way between background (0) and the defect's typical level: the edge of a
            # blurred step lies there, whatever the contrast
            thr = max(floor, 0.5 * level)
            mask = (d > thr) & inbox
            mask = self._clean(mask, inbox)
        fallback = not mask.any()
        if fallback:  # nothing stands out: an ellipse inscribed in the box, flagged as such
            mask = np.zeros((rh, rw), np.uint8)
            cv2.ellipse(mask, (((bx1 + bx2) / 2, (by1 + by2) / 2), (float(max(1, bx2 - bx1)),
                                                                     float(max(1, by2 - by1))), 0.0), 1, -1)
            mask = mask.astype(bool) & inbox
        if scale < 1.0:
            full_roi = cv2.resize(mask.astype(np.uint8), (rx2 - rx1, ry2 - ry1), interpolation=cv2.INTER_NEAREST)
        else:
            full_roi = mask.astype(np.uint8)
        box_mask = full_roi[y1 - ry1:y2 - ry1, x1 - rx1:x2 - rx1].astype(bool)
        return MaskResult(box_mask, x1, y1, x2, y2, self.name, 1.0, fallback)

    @staticmethod
    def _clean(mask: np.ndarray, inbox: np.ndarray) -> np.ndarray:
        m = mask.astype(np.uint8)
        side = int(inbox.sum() ** 0.5)
        k = 3 if side > 24 else 1
        if k > 1:
            m = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
        # drop specks: components under 2 % of the largest one (noise), keep the rest
        n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        if n > 1:
            areas = stats[1:, cv2.CC_STAT_AREA]
            keep = np.zeros(n, bool)
            keep[1:] = areas >= max(4, 0.02 * areas.max())
            m = keep[lab].astype(np.uint8)
        # fill holes: flood the background from the border; what is not reached is a hole
        inv = (1 - m).astype(np.uint8)
        ff = np.zeros((m.shape[0] + 2, m.shape[1] + 2), np.uint8)
        filled = inv.copy()
        cv2.floodFill(filled, ff, (0, 0), 2)
        m = (m | (filled == 1)).astype(bool)
        return m & inbox

    def unload(self) -> None:  # nothing held
        return None


# ----------------------------------------------------------------------------------------
# SAM 2
# ----------------------------------------------------------------------------------------
class Sam2Segmenter:
    """SAM 2 (hiera-tiny) with each box as a prompt, one image embedding per image.

    Example:
        >>> seg = Sam2Segmenter(None, random_init=True)   # plumbing only: random weights
        >>> seg.name
        'sam2-random-init'
        >>> masks = seg.segment(img_bgr, [box1, box2]); seg.unload()   # doctest: +SKIP
    """

    def __init__(self, ckpt_path: Optional[str | Path], random_init: bool = False, device: str = "cpu",
                 config: str = SAM2_TINY_CFG):
        if ckpt_path is None and not random_init:
            raise ValueError("SAM 2 needs a checkpoint (or random_init=True for tests)")
        import torch
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor
        if ckpt_path is not None and not Path(ckpt_path).is_file():
            raise FileNotFoundError(f"SAM 2 checkpoint not found: {ckpt_path}")
        sd = None
        if ckpt_path is not None:  # read the checkpoint first: a bad file fails fast, before building
            try:
                sd = torch.load(str(ckpt_path), map_location="cpu", weights_only=True)
            except Exception as e:
                raise ValueError(f"{Path(ckpt_path).name} is not a SAM 2 checkpoint ({type(e).__name__})") from None
            sd = sd.get("model", sd) if isinstance(sd, dict) else None
            if not isinstance(sd, dict) or not any(str(k).startswith("image_encoder.") for k in sd):
                raise ValueError(f"{Path(ckpt_path).name} is not a SAM 2 checkpoint (no image encoder weights)")
        torch.manual_seed(0)
        model = build_sam2(config, ckpt_path=None, device="cpu")
        if sd is not None:
            model.load_state_dict(sd, strict=True)
        model = model.to(device).eval()
        self._predictor = SAM2ImagePredictor(model)
        self.name = "sam2-hiera-tiny" if ckpt_path else "sam2-random-init"
        self.ckpt_path = str(ckpt_path) if ckpt_path else None
        self.device = device
        self._lock = threading.Lock()   # one image embedding at a time

    @property
    def loaded(self) -> bool:
        return self._predictor is not None

    def segment(self, image_bgr: np.ndarray, boxes: Sequence[Any]) -> list[MaskResult]:
        import torch
        if self._predictor is None:
            raise RuntimeError("SAM 2 was unloaded")
        img = as_bgr(image_bgr)
        h, w = img.shape[:2]
        clipped = [_clip_box(b, w, h) for b in boxes]
        valid = [c for c in clipped if c is not None]
        out: list[MaskResult] = []
        masks = scores = None
        if valid:
            with self._lock, torch.inference_mode():
                self._predictor.set_image(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
                masks, scores, _ = self._predictor.predict(box=np.array(valid, np.float32), multimask_output=False)
                self._predictor.reset_predictor()   # drop the image embedding: memory back
            masks = np.asarray(masks).reshape(len(valid), -1, h, w)[:, 0] > 0
            scores = np.asarray(scores).reshape(len(valid), -1)[:, 0]
        j = 0
        for c in clipped:
            if c is None:
                out.append(MaskResult(np.zeros((0, 0), bool), 0, 0, 0, 0, self.name, 0.0, True))
                continue
            x1, y1, x2, y2 = c
            m = masks[j][y1:y2, x1:x2]
            out.append(MaskResult(m.copy(), x1, y1, x2, y2, self.name, float(scores[j]), False))
            j += 1
        return out

    def unload(self) -> None:
        """Free the model (eviction: the model manager calls this)."""
        with self._lock:
            self._predictor = None
        gc.collect()


def find_sam2_checkpoint(weights_dir: Path) -> Optional[Path]:
    for n in SAM2_CKPT_NAMES:
        p = Path(weights_dir) / n
        if p.is_file():
            return p
    return None


def load_segmenter(ckpt_path: Optional[str | Path] = None, random_init: bool = False,
                   device: str = "cpu") -> Any:
    """The segmenter to use: SAM 2 from ``ckpt_path``; a random-init SAM 2 when
    ``random_init`` (tests); otherwise the model-free one. A checkpoint that cannot be
    loaded falls back to model-free with a warning (the output names what made each mask).

    >>> load_segmenter(None).name
    'model-free'
    """
    if ckpt_path is None and not random_init:
        return ModelFreeSegmenter()
    try:
        return Sam2Segmenter(ckpt_path, random_init=random_init and ckpt_path is None, device=device)
    except Exception as e:  # a bad checkpoint must not stop defect analysis
        log.warning("SAM 2 unavailable (%s); using the model-free segmenter", e)
        return ModelFreeSegmenter()


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    inter = np.logical_and(a, b).sum()
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(inter) / float(union)
