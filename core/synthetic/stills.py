"""Rendered sheets with known geometry, for the measurement benchmark and tests.

A pinhole camera hangs ``height_mm`` above the floor (optionally tilted, optionally with
lens distortion) and looks down on a stack of metal sheets: a stack body, a few sheets
beneath the top one that stick out by up to 10 px, and the top sheet with its own
brushed texture. Lighting gradients, vignetting and sensor noise are added. Edges are
anti-aliased analytically (coverage from the signed distance to each polygon edge), so
the ground truth is exact to well under a tenth of a pixel.

The ground truth of a render is the top sheet's real size in mm, its angle, the height
of the stack top, and K at the floor (mm per px at the calibration plane).

Example:
    >>> from core.synthetic.stills import random_scene, render
    >>> import numpy as np
    >>> r = render(*random_scene(np.random.default_rng(0), width=320, height=240))
    >>> r.image.shape, r.image.dtype
    ((240, 320, 3), dtype('uint8'))
    >>> r.truth.length_mm >= r.truth.width_mm
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

import cv2
import numpy as np


@dataclass
class Camera:
    """A pinhole camera ``height_mm`` above the floor, looking straight down unless tilted.

    World frame: X, Y on the floor (mm), Z up. Image x follows world X, image y follows
    world −Y.
    """
    width: int = 1280
    height: int = 960
    focal_px: float = 800.0
    height_mm: float = 2000.0
    tilt_deg: tuple[float, float] = (0.0, 0.0)      # about the camera's x and y axes
    dist: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)   # OpenCV k1 k2 p1 p2 k3

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.focal_px, 0, (self.width - 1) / 2],
                         [0, self.focal_px, (self.height - 1) / 2],
                         [0, 0, 1]], dtype=np.float64)

    @property
    def rotation(self) -> np.ndarray:
        ax, ay = (math.radians(a) for a in self.tilt_deg)
        rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
        ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
        return rx @ ry @ np.diag([1.0, -1.0, -1.0])

    @property
    def tvec(self) -> np.ndarray:
        return -self.rotation @ np.array([0.0, 0.0, self.height_mm])

    def mm_per_px_at(self, z_mm: float = 0.0) -> float:
        """K of a nadir camera at height ``z_mm`` above the floor."""
        return (self.height_mm - z_mm) / self.focal_px

    def plane_homography(self, z_mm: float) -> np.ndarray:
        """3×3 map from (X, Y, 1) on the plane Z = z_mm to undistorted pixels."""
        r = self.rotation
        return self.matrix @ np.column_stack([r[:, 0], r[:, 1], r[:, 2] * z_mm + self.tvec])

    def project(self, pts: np.ndarray, distort: bool = False) -> np.ndarray:
        """World points (N×3, mm) → pixels (N×2); with ``distort`` through the lens model."""
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
        if distort and any(self.dist):
            rvec, _ = cv2.Rodrigues(self.rotation)
            out, _ = cv2.projectPoints(pts, rvec, self.tvec, self.matrix, np.array(self.dist, dtype=np.float64))
            return out.reshape(-1, 2)
        pc = pts @ self.rotation.T + self.tvec
        uv = pc[:, :2] / pc[:, 2:3]
        return uv * self.focal_px + self.matrix[:2, 2]


@dataclass
class SheetScene:
    """What lies on the floor: the top sheet and what is under it."""
    length_mm: float
    width_mm: float
    angle_deg: float = 0.0                    # long axis, counter-clockwise on screen
    center_mm: tuple[float, float] = (0.0, 0.0)
    stack_height_mm: float = 0.0              # top face of the top sheet above the floor
    thickness_mm: float = 2.0
    beneath_offsets_px: list[tuple[float, float]] = field(default_factory=list)   # sheets under the top one
    beneath_angles_deg: list[float] = field(default_factory=list)


@dataclass
class Style:
    floor: float = 70.0            # grey levels 0..255
    top: float = 185.0
    beneath: float = 0.85          # × top: shadowed by the sheet above
    wall: float = 0.5              # × top: the stack's side
    texture: float = 0.012         # brushed streak amplitude (relative)
    gradient: float = 0.15         # lighting gradient across the frame (relative)
    gradient_dir_deg: float = 30.0
    vignette: float = 0.1
    noise: float = 2.0             # sensor noise sigma (grey levels)
    tint: tuple[float, float, float] = (1.02, 1.0, 0.97)   # B, G, R


@dataclass
class Truth:
    length_mm: float
    width_mm: float
    angle_deg: float
    stack_height_mm: float
    camera_height_mm: float
    mm_per_px_floor: float                    # K at the calibration plane (the floor)
    top_corners_px: np.ndarray                # 4×2, where the top face lands in the image
    length_px: float                          # the top face's true size in pixels (nadir camera)
    width_px: float


@dataclass
class Rendered:
    image: np.ndarray                         # BGR uint8
    truth: Truth
    camera: Camera
    scene: SheetScene


def _rect_corners(length: float, width: float, angle_deg: float, center: tuple[float, float]) -> np.ndarray:
    a = math.radians(angle_deg)
    ul = np.array([math.cos(a), math.sin(a)])      # world Y is screen-up, so CCW on screen
    uw = np.array([-math.sin(a), math.cos(a)])
    c = np.asarray(center, dtype=np.float64)
    return np.array([c + sl * length / 2 * ul + sw * width / 2 * uw
                     for sl, sw in ((-1, -1), (1, -1), (1, 1), (-1, 1))])


def polygon_coverage(poly: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Anti-aliased coverage (0..1, float32) of a convex polygon in pixel coordinates.

    Coverage is ``clip(0.5 + signed distance to the nearest edge)``: symmetric about the
    edge, so an edge rendered this way sits exactly where the geometry says.
    """
    h, w = shape
    out = np.zeros((h, w), np.float32)
    poly = np.asarray(poly, dtype=np.float64)
    x0, y0 = np.floor(poly.min(0) - 2).astype(int)
    x1, y1 = np.ceil(poly.max(0) + 2).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
    if x1 < x0 or y1 < y0:
        return out
    xs, ys = np.meshgrid(np.arange(x0, x1 + 1, dtype=np.float64), np.arange(y0, y1 + 1, dtype=np.float64))
    area = 0.5 * np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1) * poly[:, 1])
    sign = 1.0 if area > 0 else -1.0
    dmin = np.full(xs.shape, np.inf)
    for i in range(len(poly)):
        p, q = poly[i], poly[(i + 1) % len(poly)]
        e = q - p
        n = np.hypot(*e)
        if n < 1e-9:
            continue
        # inside is on the left of each edge for a positive-area (y-down) polygon
        d = sign * ((xs - p[0]) * e[1] - (ys - p[1]) * e[0]) / n * -1
        dmin = np.minimum(dmin, d)
    out[y0:y1 + 1, x0:x1 + 1] = np.clip(0.5 + dmin, 0, 1)
    return out


def _streaks(rng: np.random.Generator, n: int = 4096) -> np.ndarray:
    base = rng.normal(0, 1, n)
    k = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    return np.convolve(base, k / k.sum() * 2.0, mode="same")


def _texture(cam: Camera, z: float, center: tuple[float, float], angle_deg: float, amp: float,
             rng: np.random.Generator) -> np.ndarray:
    """Brushed-metal streaks along a sheet's long axis, in pixel space."""
    h, w = cam.height, cam.width
    hinv = np.linalg.inv(cam.plane_homography(z))
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    p = np.stack([xs, ys, np.ones_like(xs)], -1) @ hinv.T
    X, Y = p[..., 0] / p[..., 2] - center[0], p[..., 1] / p[..., 2] - center[1]
    a = math.radians(angle_deg)
    v = -X * math.sin(a) + Y * math.cos(a)                     # across the streaks, mm
    s = _streaks(rng)
    idx = np.clip((v / 1.5 + len(s) / 2).astype(int), 0, len(s) - 1)   # 1.5 mm per streak sample
    return (1.0 + amp * s[idx]).astype(np.float32)


def _box_polys(cam: Camera, corners_xy: np.ndarray, z0: float, z1: float) -> tuple[np.ndarray, np.ndarray]:
    """Image polygons of a box's silhouette (walls) and its top face."""
    bottom = np.column_stack([corners_xy, np.full(4, z0)])
    top = np.column_stack([corners_xy, np.full(4, z1)])
    pb, pt = cam.project(bottom), cam.project(top)
    hull = cv2.convexHull(np.vstack([pb, pt]).astype(np.float32)).reshape(-1, 2).astype(np.float64)
    return hull, pt


def render(scene: SheetScene, cam: Camera, style: Optional[Style] = None, seed: int = 0) -> Rendered:
    """Render ``scene`` as seen by ``cam``; returns the image and its ground truth."""
    st = style or Style()
    rng = np.random.default_rng(seed)
    h, w = cam.height, cam.width
    # floor: concrete-like blotches
    low = cv2.resize(rng.normal(0, 1, (max(h // 40, 2), max(w // 40, 2))).astype(np.float32), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    img = np.float32(st.floor) * (1 + 0.08 * low)
    zt, t = scene.stack_height_mm, scene.thickness_mm
    n_b = len(scene.beneath_offsets_px)
    angles = scene.beneath_angles_deg or [scene.angle_deg] * n_b

    def layer(offset_px: tuple[float, float], z_top: float, z_bot: float, angle: float, shade: float,
              texture_amp: float) -> None:
        nonlocal img
        # a pixel offset at this height → mm on the plane (image y is world −Y)
        k = (cam.height_mm - z_top) / cam.focal_px
        c = (scene.center_mm[0] + offset_px[0] * k, scene.center_mm[1] - offset_px[1] * k)
        corners = _rect_corners(scene.length_mm, scene.width_mm, angle, c)
        hull, top = _box_polys(cam, corners, z_bot, z_top)
        a_wall = polygon_coverage(hull, (h, w))
        img = img * (1 - a_wall) + np.float32(st.top * st.wall) * a_wall
        a_top = polygon_coverage(top, (h, w))
        tex = _texture(cam, z_top, c, angle, texture_amp, rng)
        img = img * (1 - a_top) + np.float32(shade) * tex * a_top

    # the stack body under the visible sheets, then the sheets beneath, then the top sheet
    z_body = max(zt - t * (n_b + 1), 0.0)
    if z_body > 0:
        off = scene.beneath_offsets_px[-1] if n_b else (0.0, 0.0)
        layer(off, z_body, 0.0, angles[-1] if n_b else scene.angle_deg, st.top * st.beneath * 0.9, st.texture)
    for i in reversed(range(n_b)):
        z = zt - t * (i + 1)
        if z <= 0:
            continue
        layer(scene.beneath_offsets_px[i], z, max(z - t, 0.0), angles[i], st.top * st.beneath, st.texture)
    layer((0.0, 0.0), zt, max(zt - t, 0.0), scene.angle_deg, st.top, st.texture)

    # lighting: a linear gradient and vignetting, then noise
    xs, ys = np.meshgrid(np.linspace(-1, 1, w, dtype=np.float32), np.linspace(-1, 1, h, dtype=np.float32))
    g = math.radians(st.gradient_dir_deg)
    light = 1 + st.gradient / 2 * (xs * math.cos(g) + ys * math.sin(g)) - st.vignette * (xs ** 2 + ys ** 2) / 2
    img = img * light
    bgr = np.stack([img * st.tint[0], img * st.tint[1], img * st.tint[2]], -1)
    bgr += rng.normal(0, st.noise, bgr.shape).astype(np.float32)
    out = np.clip(bgr + 0.5, 0, 255).astype(np.uint8)
    if any(cam.dist):
        out = distort_image(out, cam)

    corners = _rect_corners(scene.length_mm, scene.width_mm, scene.angle_deg, scene.center_mm)
    top_px = cam.project(np.column_stack([corners, np.full(4, zt)]), distort=True)
    s = cam.focal_px / (cam.height_mm - zt)
    truth = Truth(length_mm=scene.length_mm, width_mm=scene.width_mm, angle_deg=scene.angle_deg,
                  stack_height_mm=zt, camera_height_mm=cam.height_mm, mm_per_px_floor=cam.mm_per_px_at(0.0),
                  top_corners_px=top_px, length_px=scene.length_mm * s, width_px=scene.width_mm * s)
    return Rendered(image=out, truth=truth, camera=cam, scene=scene)


def distort_image(ideal: np.ndarray, cam: Camera) -> np.ndarray:
    """What a lens with ``cam.dist`` makes of the ideal pinhole image."""
    h, w = ideal.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    pts = np.stack([xs.ravel(), ys.ravel()], -1).reshape(-1, 1, 2)
    und = cv2.undistortPoints(pts, cam.matrix, np.array(cam.dist, dtype=np.float64), P=cam.matrix)
    mx = und[:, 0, 0].reshape(h, w).astype(np.float32)
    my = und[:, 0, 1].reshape(h, w).astype(np.float32)
    return cv2.remap(ideal, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def random_scene(rng: np.random.Generator, width: int = 1280, height: int = 960,
                 camera_mm: tuple[float, float] = (1500.0, 3000.0),
                 size_mm: tuple[float, float] = (400.0, 2500.0),
                 stack_mm: tuple[float, float] = (0.0, 300.0),
                 max_offset_px: float = 10.0) -> tuple[SheetScene, Camera, Style, int]:
    """A random scene within the benchmark's ranges.

    The lens is chosen for the sheet (the sheet spans 45–85 % of the frame), as an
    installer would set up the camera for the sheets a line makes. Sheets are 1:1 to 1:3.
    """
    C = float(rng.uniform(*camera_mm))
    L = float(rng.uniform(*size_mm))
    W = float(rng.uniform(max(size_mm[0], L / 3), L))
    ang = float(rng.uniform(-45, 45))
    zt = float(rng.uniform(*stack_mm))
    t = float(rng.choice([0.8, 1.0, 1.5, 2.0, 3.0]))
    a = math.radians(ang)
    bx = abs(L * math.cos(a)) + abs(W * math.sin(a))        # the rotated sheet's extent, mm
    by = abs(L * math.sin(a)) + abs(W * math.cos(a))
    fill = float(rng.uniform(0.45, 0.85))
    f = fill * min((width - 4 * max_offset_px) / bx, (height - 4 * max_offset_px) / by) * (C - zt)
    k = (C - zt) / f
    room_x = max((width - 4 * max_offset_px) * k - bx, 0) / 2
    room_y = max((height - 4 * max_offset_px) * k - by, 0) / 2
    center = (float(rng.uniform(-room_x, room_x)), float(rng.uniform(-room_y, room_y)))
    n_b = int(rng.integers(0, 4))
    offs = [(float(rng.uniform(-max_offset_px, max_offset_px)), float(rng.uniform(-max_offset_px, max_offset_px)))
            for _ in range(n_b)]
    scene = SheetScene(length_mm=L, width_mm=W, angle_deg=ang, center_mm=center, stack_height_mm=zt,
                       thickness_mm=t, beneath_offsets_px=offs,
                       beneath_angles_deg=[ang + float(rng.uniform(-0.3, 0.3)) for _ in range(n_b)])
    top = float(rng.uniform(150, 215))
    style = Style(floor=float(rng.uniform(35, 100)), top=top, beneath=float(rng.uniform(0.78, 0.9)),
                  wall=float(rng.uniform(0.4, 0.6)), texture=float(rng.uniform(0.004, 0.015)),
                  gradient=float(rng.uniform(0.0, 0.3)), gradient_dir_deg=float(rng.uniform(0, 360)),
                  vignette=float(rng.uniform(0.0, 0.15)), noise=float(rng.uniform(1.0, 4.0)))
    cam = Camera(width=width, height=height, focal_px=f, height_mm=C)
    return scene, cam, style, int(rng.integers(0, 2**31))


def render_checkerboard(cam: Camera, pattern: tuple[int, int] = (9, 6), square_mm: float = 40.0,
                        board_rvec: tuple[float, float, float] = (0.0, 0.0, 0.0),
                        board_center_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
                        seed: int = 0, noise: float = 2.0, supersample: int = 3) -> np.ndarray:
    """A checkerboard (``pattern`` = inner corners cols × rows) seen by ``cam``, lens included.

    The board is ray-traced per (super-sampled) pixel: undistort, intersect the board's
    plane, read the square's colour — so lens distortion is exact, not approximated.
    """
    rng = np.random.default_rng(seed)
    h, w = cam.height, cam.width
    s = supersample
    norm = _pixel_rays(w, h, float(cam.focal_px), tuple(float(x) for x in cam.dist), s)
    rays_c = np.column_stack([norm, np.ones(len(norm))])
    r = cam.rotation
    origin = np.array([0.0, 0.0, cam.height_mm])
    rays_w = rays_c @ r                                   # camera → world directions (R^T d)
    rb, _ = cv2.Rodrigues(np.array(board_rvec, dtype=np.float64))
    n = rb @ np.array([0.0, 0.0, 1.0])
    p0 = np.array(board_center_mm, dtype=np.float64)
    denom = rays_w @ n
    lam = ((p0 - origin) @ n) / np.where(np.abs(denom) < 1e-12, 1e-12, denom)
    hit = origin + rays_w * lam[:, None]
    local = (hit - p0) @ rb                               # board frame (u, v, 0)
    cols, rows = pattern[0] + 1, pattern[1] + 1           # squares
    u = local[:, 0] / square_mm + cols / 2
    v = local[:, 1] / square_mm + rows / 2
    inside = (u >= -0.6) & (u < cols + 0.6) & (v >= -0.6) & (v < rows + 0.6)   # white margin
    on_squares = (u >= 0) & (u < cols) & (v >= 0) & (v < rows)
    black = on_squares & ((np.floor(u).astype(int) + np.floor(v).astype(int)) % 2 == 0)
    val = np.where(inside, np.where(black, 30.0, 215.0), 90.0)
    img = val.reshape(h * s, w * s).astype(np.float32)
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    img += rng.normal(0, noise, img.shape).astype(np.float32)
    g = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)


@lru_cache(maxsize=2)
def _pixel_rays(w: int, h: int, f: float, dist: tuple[float, ...], s: int) -> np.ndarray:
    """Normalised ray directions of every (super-sampled) pixel through the lens; cached
    because undistorting a million points costs a second and every frame of a camera
    shares them."""
    xs, ys = np.meshgrid((np.arange(w * s) + 0.5) / s - 0.5, (np.arange(h * s) + 0.5) / s - 0.5)
    pts = np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float64).reshape(-1, 1, 2)
    mtx = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    if any(dist):
        return cv2.undistortPoints(pts, mtx, np.array(dist, dtype=np.float64)).reshape(-1, 2)
    return (pts.reshape(-1, 2) - mtx[:2, 2]) / f


def checkerboard_corners_px(cam: Camera, pattern: tuple[int, int], square_mm: float,
                            board_rvec=(0.0, 0.0, 0.0), board_center_mm=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Where the board's inner corners land in the (distorted) image — for tests."""
    rb, _ = cv2.Rodrigues(np.array(board_rvec, dtype=np.float64))
    cols, rows = pattern[0] + 1, pattern[1] + 1
    pts = [((i + 1 - cols / 2) * square_mm, (j + 1 - rows / 2) * square_mm, 0.0)
           for j in range(pattern[1]) for i in range(pattern[0])]
    world = np.array(pts) @ rb.T + np.array(board_center_mm)
    return cam.project(world, distort=True)
