"""Frames the engine takes besides BGR arrays: a decoded YUV 4:2:0 picture, converted only
where and when the engine looks at it.

Converting a whole 720p frame from YUV to BGR costs about a third of decoding it, yet the
engine reads ~1/60 of the pixels of most frames (a 160 px grey image and an 80 px red−blue
one). :class:`YuvFrame` computes those two small images from the planes directly, from the
same pixels and with the conversion swscale applies (BT.601, limited range; measured against
the converted frames of both renderers' clips at 320–1280 px: 0.6–0.7 grey levels rms, at most
2), and converts the whole picture only for the frames the engine decides on.

    >>> import numpy as np
    >>> y = np.full((48, 64), 126, np.uint8); u = np.full((24, 32), 128, np.uint8)
    >>> f = YuvFrame(y, u, u.copy(), to_bgr=lambda: np.full((48, 64, 3), 127, np.uint8))
    >>> f.shape, f.size > 0
    ((48, 64, 3), True)
    >>> int(f.green_small((16, 12))[0, 0]), float(f.chroma_small((8, 6))[0, 0])    # mid grey
    (127, 0.0)
    >>> pixels(f).shape, pixels(f) is pixels(f)         # converted on demand, once
    ((48, 64, 3), True)
"""
from __future__ import annotations

import sys
from typing import Callable, Optional, Union

import cv2
import numpy as np

# swscale's YUV → BGR (BT.601, limited range) as measured at the engine's 160 px scale on
# decoded clips of both renderers: green = 1.163·Y − 0.396·U' − 0.820·V' − 19.8 (U' = U − 128),
# rms 0.6 grey levels against the green of the converted frame; red and blue with the
# standard factors, each clipped like the converted pixels
_G = (1.163, -0.396, -0.820, -19.8)
_Y_SCALE, _Y_OFF, _R_V, _B_U = 1.164, -18.62, 1.596, 2.017


class YuvFrame:
    """A decoded picture as its Y, U, V planes (U, V at half resolution, as 4:2:0 decoders
    hand them out). ``to_bgr``: the decoder's own full conversion, called at most once (it
    also keeps the decoder's picture, which owns the planes' memory, alive)."""

    __slots__ = ("y", "u", "v", "_to_bgr", "_bgr", "shape", "size", "ndim", "_grid")

    def __init__(self, y: np.ndarray, u: np.ndarray, v: np.ndarray, to_bgr: Callable[[], np.ndarray]):
        self.y, self.u, self.v = y, u, v
        self._to_bgr: Optional[Callable[[], np.ndarray]] = to_bgr
        self._bgr: Optional[np.ndarray] = None
        self._grid: Optional[tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]]] = None
        # what the engine reads of an array: its shape, size and channels
        self.shape = (y.shape[0], y.shape[1], 3)
        self.size = y.shape[0] * y.shape[1] * 3
        self.ndim = 3

    def copy(self) -> "YuvFrame":
        """Itself: nothing draws on the planes (a decoder hands out a new picture per frame)."""
        return self

    def bgr(self) -> np.ndarray:
        """The whole picture in BGR (converted once, then kept)."""
        if self._bgr is None:
            assert self._to_bgr is not None
            self._bgr, self._to_bgr = self._to_bgr(), None
        return self._bgr

    def _on_grid(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Y, U, V at every ``step``-th pixel, the engine's stride for ``size`` (U and V: the
        sample of each such pixel's 2×2 block), uint8."""
        h, w = self.y.shape
        step = max(1, w // (size[0] * 2))
        if self._grid is not None and step == 2 * self._grid[0]:
            # twice the last grid's stride (the red−blue image after the grey one): every 2nd of
            # its samples are this grid's, the same pixels (U/V rows (2i·s)//2 = i·s)
            return tuple(np.ascontiguousarray(p[::2, ::2]) for p in self._grid[1])   # type: ignore[return-value]
        planes = self._planes_on_grid(h, w, step)
        self._grid = (step, planes)
        return planes

    def _planes_on_grid(self, h: int, w: int, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, cols = _grid(h, w, step)
        if step % 2 == 0:    # the same pixels as a plain stride (cheaper than indexing)
            cs = step // 2
            u, v = _every(self.u, cs)[:len(rows), :len(cols)], _every(self.v, cs)[:len(rows), :len(cols)]
        else:   # rows, then columns: the same samples as one 2-D index, ~6x cheaper
            u, v = self.u[rows][:, cols], self.v[rows][:, cols]
        return _every(self.y, step), u, v

    def green_small(self, size: tuple[int, int]) -> np.ndarray:
        """The green channel at ``size`` (uint8), as the engine reduces a BGR frame: every
        ``step``-th pixel, then area averaging (the same pixels: averaging more of them would
        change the noise the engine's limits were set for)."""
        y, u, v = (cv2.resize(p, size, interpolation=cv2.INTER_AREA).astype(np.float32)
                   for p in self._on_grid(size))
        a, b, c, d = _G
        # a·y + b·(u − 128) + c·(v − 128) + d + 0.5, clipped: the same float32 operations in the
        # same order, in place (no temporaries)
        y *= a
        u -= 128.0
        u *= b
        y += u
        v -= 128.0
        v *= c
        y += v
        y += d
        y += 0.5
        return np.clip(y, 0, 255, out=y).astype(np.uint8)

    def green_area(self, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
        """The green channel of ``box`` (x1, y1, x2, y2) area-reduced to ``size`` (float32), for a
        reduction to half size or less: what area averaging the converted frame's green gives,
        computed on the planes (green is linear in Y, U, V, and the area mean of the chroma each
        2×2 block shares is the area mean of the half-size plane), without converting the
        picture. It differs from the converted frame's only where swscale clips a pixel, and by
        its rounding. ``box``: even coordinates (on the chroma grid; an odd one would put the
        chroma half a pixel off).

        >>> y = np.full((40, 64), 126, np.uint8); u = np.full((20, 32), 128, np.uint8)
        >>> f = YuvFrame(y, u, u.copy(), to_bgr=lambda: np.zeros((40, 64, 3), np.uint8))
        >>> g = f.green_area((0, 0, 64, 40), (32, 20)); g.shape, g.dtype, round(float(g[0, 0]))
        ((20, 32), dtype('float32'), 127)
        """
        x1, y1, x2, y2 = box
        w, h = size
        area = cv2.INTER_AREA
        yp = cv2.resize(self.y[y1:y2, x1:x2], size, interpolation=area)
        cu, cv_ = (p[y1 // 2:(y2 + 1) // 2, x1 // 2:(x2 + 1) // 2] for p in (self.u, self.v))
        if cu.shape != (h, w):
            cu, cv_ = (cv2.resize(p, size, interpolation=area) for p in (cu, cv_))
        a, b, c, d = _G
        # one pass: a·Y + b·U + c·V + (d − 128·(b + c)) over the three planes side by side
        m = np.array([[a, b, c, d - 128.0 * (b + c)]], np.float32)
        return cv2.transform(cv2.merge([yp, np.ascontiguousarray(cu), np.ascontiguousarray(cv_)]).astype(np.float32), m)

    def chroma_small(self, size: tuple[int, int]) -> np.ndarray:
        """Red − blue at ``size`` (float32), as the engine reduces a BGR frame: red and blue
        converted and clipped pixel by pixel before the averaging (a saturated arm's blue
        clips at 0, and that must not average away)."""
        y, u, v = (np.ascontiguousarray(p) for p in self._on_grid(size))
        # saturating uint8 arithmetic: rounded and clipped to 0..255 like the converted pixels
        r = cv2.addWeighted(y, _Y_SCALE, v, _R_V, _Y_OFF - 128.0 * _R_V)
        b = cv2.addWeighted(y, _Y_SCALE, u, _B_U, _Y_OFF - 128.0 * _B_U)
        return (cv2.resize(r, size, interpolation=cv2.INTER_AREA).astype(np.float32)
                - cv2.resize(b, size, interpolation=cv2.INTER_AREA))


def _every(p: np.ndarray, step: int) -> np.ndarray:
    """``p[::step, ::step]`` (uint8) as a contiguous array. A plain strided copy gathers byte
    by byte (~33 µs for a 720p plane's every 4th pixel); read as words of ``step`` pixels,
    each word's low byte is the pixel wanted, and the cast to uint8 keeps just that byte
    (little-endian machines; ~4× cheaper).

    >>> a = np.arange(96, dtype=np.uint8).reshape(8, 12)
    >>> all(np.array_equal(_every(a[:, :s * 2], s), a[::s, :s * 2:s]) for s in (1, 2, 4))
    True
    """
    h, w = p.shape
    if (_LITTLE and step in (2, 4, 8) and p.dtype == np.uint8 and p.strides[1] == 1 and w % step == 0
            and p.strides[0] % step == 0):
        return p[::step].view(f"<u{step}").astype(np.uint8)
    return np.ascontiguousarray(p[::step, ::step])


_LITTLE = sys.byteorder == "little"
_GRIDS: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}


def _grid(h: int, w: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the U/V samples under every ``step``-th pixel (kept per size)."""
    key = (h, w, step)
    g = _GRIDS.get(key)
    if g is None:
        if len(_GRIDS) > 32:
            _GRIDS.clear()
        g = _GRIDS[key] = (np.arange(0, h, step) // 2, np.arange(0, w, step) // 2)
    return g


Image = Union[np.ndarray, YuvFrame]


def pixels(frame: Image) -> np.ndarray:
    """The frame as an array (a :class:`YuvFrame` converted, once)."""
    return frame.bgr() if isinstance(frame, YuvFrame) else frame
