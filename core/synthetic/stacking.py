"""A second, independent renderer of top-down sheet stacking: data the engine was NOT tuned on.

Tool beside the product (runtime code never imports it). It shares no code and no look with
``core/synthetic/clips.py``: its own floors (asphalt, epoxy, planks, concrete), bins (plastic,
steel, painted, a flat table), finishes — smooth and low-texture (painted, galvanised with
faint spangle cells, matte) as well as textured (brushed, diamond tread plate, hot-rolled) —
lit by a world-fixed lamp (vignette, directional gradient, a specular lamp reflection that
stays put when an identical sheet lands), sheets with thickness (a cast rim shadow), an
articulated suction gripper or gloved hands of any colour, alone or as a two-person carry.

Cycles (``Cycle.kind``):

* ``sheet``    a sheet is carried in and released on the stack (``carrier``: gripper | hands);
* ``touch``    a gloved hand reaches in, touches the top sheet and leaves;
* ``nudge``    a hand straightens the top sheet: it slides/rotates a few px, no sheet added;
* ``hover``    an arm (empty gripper or hand) stops over the stack for ``pause_s`` and leaves;
* ``empty``    the empty gripper comes down on the stack and leaves (a missed pick).

Only ``sheet`` adds to the count; the others are written as ``"hand"`` events in the truth.
``linger_s`` keeps the arm resting over the stack after a release; ``pause_s`` hovers it.

The ground truth has exactly the JSON layout of the project's benchmark truth (``path``,
``width``, ``height``, ``fps``, ``frames``, ``expected_count``, ``events`` with ``kind``
"sheet"|"hand", ``index``, ``enter_frame`` (first frame with the arm or its shadow in view),
``release_frame``, ``stable_frame`` (first frame with arm and shadow gone again), ``box``,
``pause_s``; ``spec``), so ``python -m core bench count`` scores it unchanged. The spec holds
the cycle kinds (``spec["cycles"][i]["kind"]``).

    >>> spec = StackSpec(width=160, height=120, fps=10, seed=3,
    ...                  cycles=[Cycle("sheet"), Cycle("touch"), Cycle("sheet", gap_s=0.3)])
    >>> frames, truth = render_frames(spec)
    >>> truth.expected_count, [e.kind for e in truth.events]
    (2, ['sheet', 'hand', 'sheet'])
    >>> frames[0].shape
    (120, 160, 3)

Sets: :func:`set_specs` ("tune", "heldout", "heldout2", ..., "heldout5", ``quick``) and :func:`render_set`
give disjoint clip sets (other seeds AND other resolutions/fps, floors, bins, paints, arm
colours). Never tune on a held-out set; "heldout2" was added after "heldout" had been looked
at, so that a refit can be judged on clips nobody has seen; "heldout3" was fixed before a
final run of issue 12 and looked at only in it; "heldout4" was fixed after that run, before
the last one.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Optional

import cv2
import numpy as np

RENDER_VERSION = 2          # bump when the pictures change: cached clips are rendered again
SMOOTH_FINISHES = ("painted", "galvanised", "matte")
TEXTURED_FINISHES = ("brushed", "tread", "hot_rolled")
FLOORS = {   # name: (base BGR 0..1, speckle, large-scale variation)
    "asphalt": ((0.20, 0.20, 0.21), 0.05, 0.03),
    "concrete_light": ((0.66, 0.68, 0.69), 0.03, 0.05),
    "epoxy_green": ((0.38, 0.52, 0.33), 0.01, 0.02),
    "epoxy_grey": ((0.55, 0.55, 0.53), 0.008, 0.025),
    "planks": ((0.34, 0.48, 0.62), 0.02, 0.0),
    "rubber_dark": ((0.12, 0.12, 0.12), 0.02, 0.01),
    # added for the second held-out set (heldout2) only
    "concrete_dark": ((0.36, 0.37, 0.38), 0.035, 0.045),
    "tile_terracotta": ((0.22, 0.32, 0.55), 0.012, 0.02),
    "steel_deck": ((0.46, 0.47, 0.49), 0.01, 0.02),
    # added for the third held-out set (heldout3) only
    "linoleum_blue": ((0.55, 0.42, 0.30), 0.008, 0.02),
    "concrete_polished": ((0.50, 0.52, 0.52), 0.015, 0.06),
    "plywood": ((0.45, 0.60, 0.70), 0.02, 0.01),
    # added for the fourth held-out set (heldout4) only
    "rubber_blue": ((0.45, 0.30, 0.18), 0.02, 0.01),
    "concrete_warm": ((0.52, 0.58, 0.63), 0.03, 0.05),
    "terrazzo": ((0.62, 0.62, 0.60), 0.04, 0.02),
    # added for the fifth held-out set (heldout5) only
    "granite_dark": ((0.26, 0.25, 0.27), 0.045, 0.02),
    "rubber_green": ((0.20, 0.34, 0.18), 0.02, 0.01),
    "concrete_sand": ((0.58, 0.64, 0.70), 0.03, 0.05),
    # added for the sixth held-out set (heldout6) only
    "slate_tile": ((0.33, 0.30, 0.28), 0.02, 0.03),
    "rubber_red": ((0.14, 0.16, 0.42), 0.02, 0.01),
    "concrete_pale": ((0.72, 0.73, 0.72), 0.025, 0.04),
    # added for the seventh held-out set (heldout7) only
    "basalt": ((0.17, 0.18, 0.20), 0.04, 0.025),
    "resin_teal": ((0.48, 0.50, 0.22), 0.01, 0.03),
    "concrete_stained": ((0.44, 0.49, 0.53), 0.04, 0.055),
    # added for the eighth held-out set (heldout8) only
    "asphalt_grey": ((0.26, 0.26, 0.27), 0.05, 0.03),
    "epoxy_ochre": ((0.30, 0.52, 0.62), 0.012, 0.025),
    "deck_plate_grey": ((0.47, 0.47, 0.46), 0.03, 0.05),
    # added for the ninth held-out set (heldout9) only
    "cork_brown": ((0.30, 0.42, 0.55), 0.03, 0.03),
    "screed_grey": ((0.55, 0.56, 0.55), 0.02, 0.06),
    "vinyl_charcoal": ((0.20, 0.20, 0.21), 0.015, 0.02),
    # added for the tenth held-out set (heldout10) only
    "quarry_tile_red": ((0.20, 0.28, 0.48), 0.025, 0.02),
    "concrete_smooth": ((0.60, 0.61, 0.60), 0.012, 0.05),
    "rubber_graphite": ((0.16, 0.15, 0.15), 0.025, 0.015),
    # added for the eleventh held-out set (heldout11) only
    "terrazzo_cream": ((0.66, 0.72, 0.76), 0.035, 0.03),
    "plywood_pale": ((0.45, 0.58, 0.66), 0.02, 0.05),
    "slate_bluegrey": ((0.34, 0.30, 0.27), 0.02, 0.025),
    # added for the twelfth held-out set (heldout12) only
    "magnesite_beige": ((0.55, 0.62, 0.68), 0.03, 0.035),
    "rubber_olive": ((0.18, 0.26, 0.24), 0.025, 0.02),
    "steel_plate_worn": ((0.44, 0.45, 0.47), 0.04, 0.045),
    # added for the thirteenth held-out set (heldout13) only
    "brick_pavers": ((0.24, 0.33, 0.50), 0.035, 0.03),
    "epoxy_slate": ((0.40, 0.38, 0.36), 0.01, 0.03),
    "concrete_oily": ((0.30, 0.31, 0.31), 0.045, 0.06),
    # added for the fourteenth held-out set (heldout14) only
    "asphalt_sealed": ((0.15, 0.15, 0.16), 0.03, 0.02),
    "tile_sage": ((0.45, 0.55, 0.48), 0.015, 0.02),
    "concrete_chalky": ((0.70, 0.70, 0.68), 0.02, 0.05),
    # added for the fifteenth held-out set (heldout15) only
    "terrazzo_speckled": ((0.66, 0.74, 0.78), 0.04, 0.02),
    "asphalt_cracked": ((0.20, 0.19, 0.18), 0.05, 0.08),
    "epoxy_saffron": ((0.22, 0.50, 0.62), 0.01, 0.03),
    # added for the sixteenth held-out set (heldout16) only
    "concrete_polished_warm": ((0.55, 0.60, 0.66), 0.015, 0.04),
    "rubber_maroon": ((0.12, 0.10, 0.30), 0.02, 0.015),
    "plank_grey": ((0.46, 0.47, 0.47), 0.03, 0.0),
    # added for the seventeenth held-out set (heldout17) only
    "terrazzo_rose": ((0.62, 0.60, 0.72), 0.035, 0.02),
    "asphalt_tarred": ((0.16, 0.16, 0.15), 0.025, 0.05),
    "epoxy_jade": ((0.40, 0.55, 0.30), 0.01, 0.025),
    # added for the eighteenth held-out set (heldout18) only
    "terrazzo_charcoal": ((0.25, 0.30, 0.55), 0.03, 0.03),
    "screed_ochre": ((0.44, 0.46, 0.47), 0.04, 0.09),
    "vinyl_sand": ((0.58, 0.68, 0.72), 0.008, 0.01),
    # added for the nineteenth held-out set (heldout19) only
    "quartz_flecked": ((0.52, 0.50, 0.49), 0.03, 0.02),
    "rubber_petrol": ((0.30, 0.28, 0.12), 0.025, 0.02),
    "concrete_rough_dark": ((0.28, 0.29, 0.30), 0.05, 0.07),
    # added for the twentieth held-out set (heldout20) only
    "cork_tiles": ((0.30, 0.42, 0.55), 0.04, 0.03),
    "epoxy_cobalt": ((0.55, 0.30, 0.12), 0.01, 0.02),
    "tarmac_fresh": ((0.19, 0.20, 0.21), 0.02, 0.06),
    # added for the twenty-first held-out set (heldout21) only
    "linoleum_grey": ((0.50, 0.51, 0.50), 0.01, 0.015),
    "epoxy_plum": ((0.35, 0.18, 0.38), 0.01, 0.02),
    "concrete_swept": ((0.40, 0.42, 0.44), 0.045, 0.05),
    # added for the twenty-second held-out set (heldout22) only
    "slate_tiles": ((0.33, 0.31, 0.29), 0.035, 0.025),
    "epoxy_teal": ((0.45, 0.42, 0.12), 0.01, 0.02),
    "asphalt_resealed": ((0.14, 0.14, 0.13), 0.02, 0.04),
    # added for the twenty-third held-out set (heldout23) only
    "terrazzo_grey": ((0.52, 0.53, 0.55), 0.05, 0.02),
    "epoxy_mustard": ((0.18, 0.45, 0.58), 0.01, 0.02),
    "rubber_studded": ((0.19, 0.20, 0.21), 0.03, 0.03),
    # added for the twenty-fourth held-out set (heldout24) only
    "quartzite_white": ((0.70, 0.71, 0.72), 0.04, 0.02),
    "epoxy_rust": ((0.16, 0.26, 0.48), 0.01, 0.02),
    "rubber_speckled_blue": ((0.30, 0.22, 0.16), 0.04, 0.03),
    # added for the twenty-fifth held-out set (heldout25) only
    "basalt_honed": ((0.24, 0.24, 0.25), 0.03, 0.02),
    "epoxy_lilac": ((0.62, 0.45, 0.52), 0.01, 0.02),
    "cork_composite": ((0.30, 0.42, 0.52), 0.05, 0.03),
    # added for the twenty-sixth held-out set (heldout26) only
    "granite_speckled": ((0.40, 0.40, 0.42), 0.06, 0.03),
    "epoxy_seafoam": ((0.50, 0.50, 0.20), 0.01, 0.02),
    "linoleum_brown": ((0.20, 0.30, 0.42), 0.02, 0.02),
    # added for the twenty-seventh held-out set (heldout27) only
    "sandstone_flags": ((0.45, 0.55, 0.62), 0.05, 0.03),
    "epoxy_coral": ((0.40, 0.45, 0.75), 0.01, 0.02),
    "rubber_ribbed_green": ((0.20, 0.32, 0.22), 0.04, 0.03),
    # added for the twenty-eighth held-out set (heldout28) only
    "flagstone_blue": ((0.50, 0.46, 0.40), 0.05, 0.03),
    "epoxy_navy": ((0.36, 0.22, 0.14), 0.01, 0.02),
    "rubber_coin_grey": ((0.40, 0.40, 0.39), 0.03, 0.02),
}
BINS = {     # name: (BGR 0..1 or None for a flat table with no walls)
    "plastic_black": (0.10, 0.10, 0.11),
    "painted_yellow": (0.10, 0.72, 0.86),
    "steel_dark": (0.30, 0.31, 0.33),
    "white": (0.86, 0.87, 0.86),
    "plastic_blue": (0.62, 0.35, 0.12),
    "table_light": None,
    # added for the second held-out set (heldout2) only
    "painted_green": (0.28, 0.52, 0.22),
    "plastic_grey": (0.46, 0.46, 0.45),
    "crate_orange": (0.12, 0.48, 0.90),
    # added for the third held-out set (heldout3) only
    "painted_red": (0.15, 0.15, 0.70),
    "steel_light": (0.60, 0.61, 0.62),
    "plastic_green": (0.25, 0.55, 0.20),
    # added for the fourth held-out set (heldout4) only
    "plastic_red": (0.12, 0.12, 0.55),
    "steel_blue": (0.55, 0.45, 0.35),
    "painted_white": (0.80, 0.82, 0.80),
    # added for the fifth held-out set (heldout5) only
    "plastic_yellow": (0.15, 0.80, 0.90),
    "steel_galv": (0.52, 0.53, 0.55),
    "painted_black": (0.07, 0.07, 0.08),
    # added for the sixth held-out set (heldout6) only
    "plastic_orange": (0.10, 0.45, 0.95),
    "steel_brushed": (0.58, 0.58, 0.60),
    "painted_navy": (0.35, 0.15, 0.08),
    # added for the seventh held-out set (heldout7) only
    "plastic_purple": (0.50, 0.18, 0.42),
    "steel_oxide": (0.28, 0.33, 0.40),
    "painted_cream": (0.70, 0.86, 0.90),
    # added for the eighth held-out set (heldout8) only
    "plastic_lime": (0.20, 0.75, 0.55),
    "steel_gunmetal": (0.22, 0.23, 0.25),
    "painted_sky": (0.88, 0.70, 0.45),
    # added for the ninth held-out set (heldout9) only
    "plastic_teal": (0.55, 0.55, 0.15),
    "steel_zinc": (0.62, 0.63, 0.64),
    "painted_brick": (0.18, 0.25, 0.55),
    # added for the tenth held-out set (heldout10) only
    "plastic_magenta": (0.55, 0.15, 0.65),
    "steel_satin": (0.50, 0.51, 0.52),
    "painted_mint": (0.62, 0.80, 0.55),
    # added for the eleventh held-out set (heldout11) only
    "plastic_violet": (0.45, 0.20, 0.35),
    "steel_pewter": (0.40, 0.41, 0.43),
    "painted_salmon": (0.45, 0.55, 0.85),
    # added for the twelfth held-out set (heldout12) only
    "plastic_aqua": (0.70, 0.62, 0.20),
    "steel_bronze": (0.30, 0.42, 0.50),
    "painted_lilac": (0.78, 0.60, 0.66),
    # added for the thirteenth held-out set (heldout13) only
    "plastic_cobalt": (0.68, 0.32, 0.10),
    "steel_graphite": (0.25, 0.26, 0.27),
    "painted_sand": (0.52, 0.70, 0.78),
    # added for the fourteenth held-out set (heldout14) only
    "plastic_crimson": (0.15, 0.08, 0.60),
    "steel_cold": (0.56, 0.54, 0.50),
    "painted_forest": (0.20, 0.38, 0.16),
    # added for the fifteenth held-out set (heldout15) only
    "plastic_lilac": (0.50, 0.20, 0.42),
    "steel_weathered": (0.22, 0.30, 0.42),
    "painted_ivory": (0.72, 0.86, 0.90),
    # added for the sixteenth held-out set (heldout16) only
    "plastic_amber": (0.10, 0.50, 0.85),
    "steel_darkened": (0.26, 0.26, 0.28),
    "painted_coral": (0.45, 0.55, 0.90),
    # added for the seventeenth held-out set (heldout17) only
    "plastic_navy": (0.38, 0.16, 0.08),
    "steel_bright": (0.62, 0.63, 0.64),
    "painted_pistachio": (0.62, 0.78, 0.55),
    # added for the eighteenth held-out set (heldout18) only
    "plastic_olive": (0.55, 0.50, 0.10),
    "steel_hazed": (0.50, 0.51, 0.53),
    "painted_mauve": (0.62, 0.48, 0.62),
    # added for the nineteenth held-out set (heldout19) only
    "plastic_rust": (0.10, 0.30, 0.62),
    "steel_matt_dark": (0.34, 0.35, 0.37),
    "painted_turquoise": (0.62, 0.60, 0.20),
    # added for the twentieth held-out set (heldout20) only
    "plastic_seafoam": (0.60, 0.70, 0.35),
    "steel_brushed_warm": (0.52, 0.55, 0.58),
    "painted_lemon": (0.20, 0.80, 0.85),
    # added for the twenty-first held-out set (heldout21) only
    "plastic_charcoal": (0.16, 0.16, 0.17),
    "steel_blued": (0.48, 0.40, 0.34),
    "painted_apricot": (0.45, 0.65, 0.95),
    # added for the twenty-second held-out set (heldout22) only
    "plastic_mint": (0.50, 0.45, 0.10),
    "steel_frosted": (0.56, 0.57, 0.59),
    "painted_peach": (0.48, 0.55, 0.92),
    # added for the twenty-third held-out set (heldout23) only
    "plastic_orchid": (0.70, 0.50, 0.62),
    "steel_oiled": (0.36, 0.37, 0.38),
    "painted_lime": (0.25, 0.78, 0.62),
    # added for the twenty-fourth held-out set (heldout24) only
    "plastic_coral": (0.42, 0.50, 0.88),
    "steel_anodised": (0.48, 0.40, 0.34),
    "painted_plum": (0.40, 0.20, 0.42),
    # added for the twenty-fifth held-out set (heldout25) only
    "plastic_sky": (0.85, 0.65, 0.40),
    "steel_galv_bright": (0.66, 0.67, 0.68),
    "painted_olive": (0.15, 0.45, 0.42),
    # added for the twenty-sixth held-out set (heldout26) only
    "plastic_pistachio": (0.62, 0.80, 0.55),
    "steel_heat_tinted": (0.45, 0.33, 0.28),
    "painted_dune": (0.55, 0.70, 0.78),
    # added for the twenty-seventh held-out set (heldout27) only
    "plastic_lavender": (0.80, 0.62, 0.70),
    "steel_patinated": (0.50, 0.52, 0.44),
    "painted_ochre": (0.15, 0.55, 0.75),
    # added for the twenty-eighth held-out set (heldout28) only
    "plastic_peach": (0.62, 0.72, 0.92),
    "steel_satin_cool": (0.58, 0.56, 0.52),
    "painted_jade": (0.45, 0.62, 0.20),
}
SIDES = ("left", "right", "top", "bottom")
CARRIERS = ("gripper", "hands")
HAND_KINDS = ("touch", "nudge", "hover", "empty")


# --------------------------------------------------------------------------- specs
@dataclass
class Cycle:
    """One arm cycle (see the module doc for ``kind``).

    ``gap_s``: stillness before the arm enters; ``side``: the frame edge it enters from and
    leaves by (None = random); ``colour``: BGR 0..255 of the arm or glove (None = from the set's palette);
    ``offset_px``/``angle_deg``: where the new sheet lands relative to the one below
    (None = from the stage's placement style); ``identical``: the new sheet has exactly the
    pixels of the one below; ``speed`` > 1: a faster arm.
    """
    kind: str = "sheet"
    gap_s: float = 1.0
    carrier: Optional[str] = None
    side: Optional[str] = None
    colour: Optional[tuple[int, int, int]] = None
    linger_s: float = 0.0
    pause_s: float = 0.0
    offset_px: Optional[tuple[float, float]] = None
    angle_deg: Optional[float] = None
    identical: Optional[bool] = None
    speed: float = 1.0


@dataclass
class Stage:
    floor: str = "asphalt"
    bin: str = "painted_yellow"
    finish: str = "painted"
    paint: tuple[float, float, float] = (0.62, 0.42, 0.22)    # BGR 0..1 of painted sheets
    bin_frac: float = 0.72          # bin's outer size as a fraction of the frame's short side
    sheet_fill: float = 0.75        # sheet size as a fraction of the bin's inner size
    aspect: float = 1.45            # sheet w / h
    initial: int = 1                # sheets on the stack at frame 0
    identical: bool = False         # every sheet of the clip has the same pixels
    placement: str = "near"         # near (1–4 px off the one below) | loose (up to ~4 % of the sheet)
    palette: list[tuple[int, int, int]] = field(default_factory=lambda: [(40, 110, 235)])
    lamp: tuple[float, float] = (0.35, 0.3)   # lamp reflection centre (fraction of w, h)


@dataclass
class Camera:
    noise: float = 2.0              # sensor noise sigma (grey levels)
    flicker: float = 0.0            # mains flicker amplitude (gain ±)
    mains_hz: float = 100.0         # light pulses per second (2 × mains)
    band: float = 0.0               # rolling-shutter flicker band amplitude
    drift: float = 0.0              # slow gain drift amplitude
    drift_period_s: float = 30.0
    exposure_jumps: int = 0         # sudden gain steps (auto exposure re-locking)
    auto_exposure: float = 0.0      # gain response to a large dark/bright arm in view
    shake_px: int = 0               # camera shake amplitude (integer px)
    shake_bursts: bool = False      # shake comes in bursts (a forklift passing) instead of always
    shadow_passes: int = 0          # soft shadows of people walking past, during idle stretches
    codec: str = "mp4v"             # mp4v (OpenCV) | h264 (PyAV libx264)
    crf: int = 26                   # h264 quality (higher = harsher compression)
    jpeg: int = 0                   # > 0: frames pass through JPEG first (an IP camera)


@dataclass
class StackSpec:
    width: int = 640
    height: int = 480
    fps: float = 30.0
    seed: int = 0
    cycles: list[Cycle] = field(default_factory=lambda: [Cycle()])
    stage: Stage = field(default_factory=Stage)
    camera: Camera = field(default_factory=Camera)
    lead_s: float = 1.0
    tail_s: float = 1.5
    name: str = "stack"
    renderer: str = "stacking"
    version: int = RENDER_VERSION

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


@dataclass
class EventTruth:
    kind: str                       # "sheet" | "hand"
    index: int                      # 1-based sheet number (0 for arm-only cycles)
    enter_frame: int
    release_frame: int
    stable_frame: int
    box: Optional[list[int]] = None
    pause_s: float = 0.0


@dataclass
class StackTruth:
    path: str
    width: int
    height: int
    fps: float
    frames: int
    expected_count: int
    events: list[EventTruth]
    black_frames: list[int] = field(default_factory=list)
    frozen_frames: list[int] = field(default_factory=list)
    dropped_scene_frames: list[int] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def sheet_events(self) -> list[EventTruth]:
        return [e for e in self.events if e.kind == "sheet"]

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(asdict(self), indent=1))
        return p

    @classmethod
    def load(cls, path: str | Path) -> "StackTruth":
        d = json.loads(Path(path).read_text())
        d["events"] = [EventTruth(**e) for e in d["events"]]
        return cls(**d)


# --------------------------------------------------------------------------- surfaces
def _field(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth random field, unit std, with blobs of about ``cell`` px."""
    gh, gw = max(2, int(h / max(cell, 1)) + 2), max(2, int(w / max(cell, 1)) + 2)
    g = rng.standard_normal((gh, gw)).astype(np.float32)
    f = cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR if cell > 3 else cv2.INTER_NEAREST)
    if cell > 3:
        f = cv2.GaussianBlur(f, (0, 0), cell / 3.0)
    return (f - f.mean()) / (f.std() + 1e-6)


def _rand_def(name: str) -> list[float]:
    """Numbers of a ``rand:a,b,c`` floor or bin name (the training corpus draws its colours)."""
    return [float(v) for v in name[5:].split(",") if v]


def _floor_def(kind: str) -> tuple[tuple[float, ...], float, float]:
    if kind.startswith("rand:"):
        v = _rand_def(kind)
        return (v[0], v[1], v[2]), v[3], v[4]
    return FLOORS[kind]


def _bin_colour(name: str) -> Optional[tuple[float, ...]]:
    if name.startswith("rand:"):
        v = _rand_def(name)
        return (v[0], v[1], v[2]) if v else None
    return BINS[name]


def _floor(rng: np.random.Generator, h: int, w: int, kind: str, unit: float) -> np.ndarray:
    base, speck, large = _floor_def(kind)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    lum = large * _field(rng, h, w, 60 * unit) + speck * rng.standard_normal((h, w)).astype(np.float32)
    if kind == "asphalt":                          # bright aggregate grains
        grains = (rng.random((h, w)) > 0.985).astype(np.float32)
        lum += 0.12 * cv2.GaussianBlur(grains, (0, 0), 0.7 * unit)
    if kind == "planks":                           # boards with grain and dark seams
        pw = max(8, int(55 * unit))
        xs = np.arange(w)
        grain = _field(rng, h, max(2, w // 6), 3 * unit)
        grain = cv2.resize(grain, (w, h), interpolation=cv2.INTER_LINEAR)
        lum += 0.04 * grain + 0.05 * rng.standard_normal(w // pw + 2)[xs // pw][None, :]
        lum[:, (xs % pw) < max(1, int(2 * unit))] -= 0.18
    if kind.startswith("epoxy"):                   # scuffs
        lum -= 0.05 * np.clip(_field(rng, h, w, 25 * unit) - 1.6, 0, None)
    return np.clip(img * (1.0 + lum)[..., None], 0, 1)


def _voronoi(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Per-pixel spangle value (galvanised zinc crystals): random value per Voronoi cell."""
    n = max(4, int(h * w / max(cell * cell, 1)))
    seeds = np.full((h, w), 255, np.uint8)
    seeds[rng.integers(0, h, n), rng.integers(0, w, n)] = 0
    _d, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_CCOMP)
    vals = rng.standard_normal(int(labels.max()) + 1).astype(np.float32)
    return vals[labels]


def _sheet_albedo(rng: np.random.Generator, h: int, w: int, st: Stage, unit: float) -> tuple[np.ndarray, float]:
    """(albedo BGR 0..1, gloss) of one sheet, with a bevel rim so that its outline shows."""
    f = st.finish
    img = np.empty((h, w, 3), np.float32)
    gloss = 0.0
    if f == "painted":
        img[:] = st.paint
        lum = 0.006 * rng.standard_normal((h, w)).astype(np.float32) + 0.01 * _field(rng, h, w, 80 * unit)
        gloss = 0.22
    elif f == "galvanised":
        img[:] = (0.70, 0.71, 0.69)
        lum = 0.025 * _voronoi(rng, h, w, 22 * unit) + 0.006 * rng.standard_normal((h, w)).astype(np.float32)
        gloss = 0.30
    elif f == "matte":
        img[:] = (0.47, 0.48, 0.50)
        lum = 0.008 * rng.standard_normal((h, w)).astype(np.float32) + 0.012 * _field(rng, h, w, 50 * unit)
        gloss = 0.04
    elif f == "brushed":
        img[:] = (0.64, 0.64, 0.66)
        streak = rng.standard_normal((h, max(2, w // 40))).astype(np.float32)
        lum = 0.05 * cv2.resize(streak, (w, h), interpolation=cv2.INTER_LINEAR)
        lum += 0.015 * rng.standard_normal((h, w)).astype(np.float32)
        gloss = 0.18
    elif f == "tread":
        img[:] = (0.58, 0.59, 0.60)
        p = max(6, int(16 * unit))
        tile = np.zeros((2 * p, 2 * p), np.float32)
        for (cx, cy, ang) in ((p // 2, p // 2, 45), (3 * p // 2, 3 * p // 2, 45), (3 * p // 2, p // 2, -45),
                              (p // 2, 3 * p // 2, -45)):
            cv2.ellipse(tile, (cx, cy), (max(2, p // 2 - 1), max(1, p // 8)), ang, 0, 360, 1.0, -1, cv2.LINE_AA)
        relief = np.tile(tile, (h // (2 * p) + 1, w // (2 * p) + 1))[:h, :w]
        shade = relief - np.roll(np.roll(relief, 1, 0), 1, 1)          # lit from the top-left
        lum = 0.10 * shade + 0.05 * relief + 0.02 * _field(rng, h, w, 30 * unit)
        gloss = 0.12
    elif f == "hot_rolled":
        img[:] = (0.33, 0.31, 0.30)
        lum = 0.09 * _field(rng, h, w, 18 * unit) + 0.05 * _field(rng, h, w, 4 * unit)
        lum -= 0.25 * (rng.random((h, w)) > 0.996)
        gloss = 0.05
    else:
        raise ValueError(f"unknown finish {f!r}")
    img *= (1.0 + lum)[..., None]
    r = max(1, int(round(1.2 * unit)))             # bevel: light top/left rim, dark bottom/right rim
    img[:r, :] *= 1.18
    img[:, :r] *= 1.12
    img[-r:, :] *= 0.72
    img[:, -r:] *= 0.78
    return np.clip(img, 0, 1), gloss


# --------------------------------------------------------------------------- geometry
@dataclass
class _Sheet:
    tex: np.ndarray          # albedo h×w×3
    gloss: float
    cx: float
    cy: float
    angle: float             # degrees

    def corners(self, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
        h, w = self.tex.shape[:2]
        return cv2.boxPoints(((self.cx + dx, self.cy + dy), (w * scale, h * scale), self.angle)).astype(np.float32)

    def box(self, pad: int) -> list[int]:
        c = self.corners()
        return [int(math.floor(c[:, 0].min())) - pad, int(math.floor(c[:, 1].min())) - pad,
                int(math.ceil(c[:, 0].max())) - pad, int(math.ceil(c[:, 1].max())) - pad]


def _roi(pts: np.ndarray, shape: tuple[int, int], margin: int) -> Optional[tuple[int, int, int, int]]:
    H, W = shape
    x0, y0 = int(math.floor(pts[:, 0].min())) - margin, int(math.floor(pts[:, 1].min())) - margin
    x1, y1 = int(math.ceil(pts[:, 0].max())) + margin + 1, int(math.ceil(pts[:, 1].max())) + margin + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _warp(sheet: _Sheet, roi: tuple[int, int, int, int], scale: float = 1.0, dx: float = 0.0,
          dy: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(albedo, alpha) of ``sheet`` warped into ``roi`` (x0, y0, x1, y1) of the canvas."""
    x0, y0, x1, y1 = roi
    h, w = sheet.tex.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), -sheet.angle, scale)
    M[0, 2] += sheet.cx + dx - w / 2.0 - x0
    M[1, 2] += sheet.cy + dy - h / 2.0 - y0
    size = (x1 - x0, y1 - y0)
    tex = cv2.warpAffine(sheet.tex, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    a = cv2.warpAffine(np.ones((h, w), np.float32), M, size, flags=cv2.INTER_LINEAR, borderValue=0)
    return tex, a


class _Stage:
    """Static scene: floor, bin, lighting and the stack, kept as a lit float canvas."""

    def __init__(self, rng: np.random.Generator, W: int, H: int, st: Stage, pad: int):
        self.rng, self.st, self.pad = rng, st, pad
        self.CW, self.CH = W + 2 * pad, H + 2 * pad
        self.W, self.H = W, H
        self.unit = max(min(W, H) / 480.0, 0.35)
        u = self.unit
        yy, xx = np.mgrid[0:self.CH, 0:self.CW].astype(np.float32)
        nx, ny = xx / self.CW - 0.5, yy / self.CH - 0.5
        ang = rng.uniform(0, 2 * math.pi)
        self.illum = (1.0 - 0.35 * (nx ** 2 + ny ** 2) * 2 + 0.12 * (nx * math.cos(ang) + ny * math.sin(ang)))
        lx, ly = st.lamp
        self.spec = np.exp(-(((xx / self.CW - lx) / 0.16) ** 2 + ((yy / self.CH - ly) / 0.10) ** 2)).astype(np.float32)
        self.shadow_vec = np.array([math.cos(ang + math.pi), math.sin(ang + math.pi)], np.float32)
        base = _floor(rng, self.CH, self.CW, st.floor, u)
        # bin
        side = st.bin_frac * min(W, H)
        bw, bh = side * max(1.0, min(1.5, st.aspect * 0.95)), side
        bw = min(bw, 0.92 * W)
        self.cx, self.cy = self.CW / 2 + rng.uniform(-0.04, 0.04) * W, self.CH / 2 + rng.uniform(-0.04, 0.04) * H
        col = _bin_colour(st.bin)
        wall = max(3, int(round(0.06 * side))) if col is not None else 0
        x0, y0, x1, y1 = self.cx - bw / 2, self.cy - bh / 2, self.cx + bw / 2, self.cy + bh / 2
        self.inner = (x0 + wall, y0 + wall, x1 - wall, y1 - wall)
        ox0, oy0, ox1, oy1 = int(x0), int(y0), int(x1), int(y1)
        # contact shadow of the bin on the floor
        m = np.zeros((self.CH, self.CW), np.float32)
        cv2.rectangle(m, (ox0, oy0), (ox1, oy1), 1.0, -1)
        sv = (self.shadow_vec * 6 * u).astype(int)
        m = cv2.GaussianBlur(np.roll(np.roll(m, sv[1], 0), sv[0], 1), (0, 0), 5 * u)
        base *= (1.0 - 0.45 * m)[..., None]
        if col is None:      # a flat light table top
            tcol = np.array((0.78, 0.80, 0.80), np.float32)
            base[oy0:oy1, ox0:ox1] = tcol * (1 + 0.015 * _field(rng, oy1 - oy0, ox1 - ox0, 40 * u))[..., None]
        else:
            c = np.array(col, np.float32)
            base[oy0:oy1, ox0:ox1] = c * 0.80                      # bin floor (inside, shaded)
            ix0, iy0, ix1, iy1 = (int(v) for v in self.inner)
            # walls seen from above: four trapezoids, each lit differently
            pts_outer = np.array([[ox0, oy0], [ox1, oy0], [ox1, oy1], [ox0, oy1]], np.int32)
            pts_inner = np.array([[ix0, iy0], [ix1, iy0], [ix1, iy1], [ix0, iy1]], np.int32)
            for k, lit in enumerate((1.12, 0.92, 0.78, 1.0)):
                quad = np.array([pts_outer[k], pts_outer[(k + 1) % 4], pts_inner[(k + 1) % 4], pts_inner[k]], np.int32)
                cv2.fillPoly(base, [quad], tuple(float(v) for v in np.clip(c * lit, 0, 1)), cv2.LINE_AA)
            cv2.rectangle(base, (ox0, oy0), (ox1, oy1), tuple(float(v) for v in c * 1.2), max(1, int(u)), cv2.LINE_AA)
            base[oy0:oy1, ox0:ox1] *= (1 + 0.02 * _field(rng, oy1 - oy0, ox1 - ox0, 20 * u))[..., None]
        self.lit = np.clip(base * self.illum[..., None], 0, 1) * 255.0       # float 0..255
        # sheet size
        iw, ih = self.inner[2] - self.inner[0], self.inner[3] - self.inner[1]
        sw = st.sheet_fill * iw
        sh = sw / st.aspect
        if sh > st.sheet_fill * ih:
            sh = st.sheet_fill * ih
            sw = sh * st.aspect
        self.sw, self.sh = max(8, int(round(sw))), max(6, int(round(sh)))
        self.stack: list[_Sheet] = []
        self.below = self.lit.copy()                   # canvas without the top sheet
        self.canvas8 = np.clip(self.lit, 0, 255).astype(np.uint8)
        self.thick = max(1.0, 1.5 * u)

    # -- sheets
    def new_sheet(self, cyc: Cycle, identical: bool) -> _Sheet:
        rng, st = self.rng, self.st
        if identical and self.stack:
            tex, gloss = self.stack[-1].tex, self.stack[-1].gloss
        else:
            tex, gloss = _sheet_albedo(rng, self.sh, self.sw, st, self.unit)
        if self.stack:
            top = self.stack[-1]
            if cyc.offset_px is not None:
                dx, dy = cyc.offset_px
            elif st.placement == "near":
                r, a = rng.uniform(1.0, 4.0), rng.uniform(0, 2 * math.pi)
                dx, dy = r * math.cos(a), r * math.sin(a)
            else:
                dx, dy = rng.normal(0, 0.025 * self.sw), rng.normal(0, 0.025 * self.sh)
            ang = cyc.angle_deg if cyc.angle_deg is not None else (
                rng.uniform(-0.25, 0.25) if st.placement == "near" else rng.uniform(-1.8, 1.8))
            cx, cy = top.cx + dx, top.cy + dy
            angle = top.angle + ang if st.placement == "near" else ang
        else:
            cx = self.cx + rng.uniform(-0.05, 0.05) * (self.inner[2] - self.inner[0] - self.sw)
            cy = self.cy + rng.uniform(-0.05, 0.05) * (self.inner[3] - self.inner[1] - self.sh)
            angle = rng.uniform(-1.0, 1.0)
        s = _Sheet(tex, gloss, cx, cy, angle)
        return self._clamp(s)

    def _clamp(self, s: _Sheet) -> _Sheet:
        """Keep the sheet inside the bin (a sheet filling it cannot wander)."""
        c = s.corners()
        x0, y0, x1, y1 = self.inner
        dx = max(0.0, x0 + 1 - c[:, 0].min()) - max(0.0, c[:, 0].max() - (x1 - 1))
        dy = max(0.0, y0 + 1 - c[:, 1].min()) - max(0.0, c[:, 1].max() - (y1 - 1))
        s.cx += dx
        s.cy += dy
        c = s.corners()
        if c[:, 0].min() < x0 or c[:, 0].max() > x1 or c[:, 1].min() < y0 or c[:, 1].max() > y1:
            s.angle *= 0.3                              # too tight to rotate: lie straight
        return s

    def lit_sheet(self, s: _Sheet, roi: tuple[int, int, int, int], scale: float = 1.0, dx: float = 0.0,
                  dy: float = 0.0, lift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(lit sheet 0..255, alpha) inside roi; a lifted sheet is nearer the lamp."""
        x0, y0, x1, y1 = roi
        tex, a = _warp(s, roi, scale, dx, dy)
        illum = self.illum[y0:y1, x0:x1, None] * (1.0 + 0.08 * lift)
        spec = self.spec[y0:y1, x0:x1, None]
        # clip(tex·illum + gloss·spec, 0, 1)·255, in place (the same float32 operations)
        tex *= illum
        tex += s.gloss * spec
        np.clip(tex, 0, 1, out=tex)
        tex *= 255.0
        return tex, a

    def _composite(self, base: np.ndarray, s: _Sheet) -> np.ndarray:
        out = base.copy()
        c = s.corners()
        sv = self.shadow_vec * self.thick
        roi = _roi(c, (self.CH, self.CW), int(4 * self.thick) + 3)
        if roi is None:
            return out
        x0, y0, x1, y1 = roi
        # thin cast shadow of the sheet's edge on what lies below
        m = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.fillPoly(m, [np.round((c + sv - (x0, y0)) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
        m = cv2.GaussianBlur(m, (0, 0), 0.8 * self.thick)
        out[y0:y1, x0:x1] *= (1.0 - 0.45 * m)[..., None]
        lit, a = self.lit_sheet(s, roi)
        out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - a[..., None]) + lit * a[..., None]
        return out

    def place(self, s: _Sheet) -> None:
        self.below = self.lit if not self.stack else self._top_canvas  # type: ignore[has-type]
        self.stack.append(s)
        self._top_canvas = self._composite(self.below, s)
        self.canvas8 = np.clip(self._top_canvas, 0, 255).astype(np.uint8)

    def move_top(self, dx: float, dy: float, dang: float) -> None:
        if not self.stack:      # a nudge of an empty bin (a random corpus can draw one) moves nothing
            return
        s = self.stack[-1]
        s.cx, s.cy, s.angle = s.cx + dx, s.cy + dy, s.angle + dang
        self._clamp(s)
        self._top_canvas = self._composite(self.below, s)
        self.canvas8 = np.clip(self._top_canvas, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- arms
def _capsule(img: np.ndarray, p: np.ndarray, q: np.ndarray, r: float, col: Any) -> None:
    """A rounded limb from p to q with radius r (sub-pixel, anti-aliased)."""
    d = q - p
    n = float(np.hypot(*d))
    if n < 1e-3:
        cv2.circle(img, tuple(np.round(p * 16).astype(int)), int(r * 16), col, -1, cv2.LINE_AA, 4)
        return
    nv = np.array([-d[1], d[0]]) / n * r
    poly = np.array([p + nv, q + nv, q - nv, p - nv])
    cv2.fillPoly(img, [np.round(poly * 16).astype(np.int32)], col, cv2.LINE_AA, shift=4)
    for c in (p, q):
        cv2.circle(img, tuple(np.round(c * 16).astype(int)), int(r * 16), col, -1, cv2.LINE_AA, 4)


_DIRS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "top": (0.0, -1.0), "bottom": (0.0, 1.0)}


class _Arm:
    """Draws one carrier at a head position. Styles: "gripper" (articulated arm, suction
    spider) or "hand" (sleeve, forearm, gloved hand). Draws colour into ``img`` and 1 into
    ``mask`` (for the shadow and the truth)."""

    def __init__(self, style: str, side: str, colour: tuple[int, int, int], unit: float, reach: float,
                 rng: np.random.Generator, out_dir: Optional[np.ndarray] = None):
        self.style, self.side, self.unit, self.reach = style, side, unit, reach
        self.col = np.array(colour, np.float32)
        self.out = np.array(out_dir if out_dir is not None else _DIRS[side], np.float32)
        self.out /= np.linalg.norm(self.out)
        self.bend = float(rng.choice([-1.0, 1.0])) * rng.uniform(0.25, 0.45)
        self.sleeve = np.array(rng.choice([(60, 60, 60), (120, 80, 40), (40, 90, 140), (30, 30, 110)]), np.float32)

    def _c(self, col: np.ndarray, k: float) -> tuple[float, ...]:
        return tuple(float(v) for v in np.clip(col * k, 0, 255))

    def draw(self, img: np.ndarray, mask: np.ndarray, head: np.ndarray, lift: float, o: np.ndarray) -> None:
        """``o``: canvas offset of img/mask (the ROI origin)."""
        u = self.unit * (1.0 + 0.25 * lift) * (1.0 if self.style == "gripper" else 1.6)
        h = head - o
        perp = np.array([-self.out[1], self.out[0]])
        if self.style == "gripper":
            elbow = h + self.out * 0.45 * self.reach + perp * self.bend * 0.45 * self.reach
            shoulder = h + self.out * 1.1 * self.reach
            parts = [(shoulder, elbow, 26 * u, 0.85), (elbow, h, 18 * u, 1.0)]
            for target in (img, mask):
                single = target is mask
                for p, q, r, k in parts:
                    _capsule(target, p, q, r, 1.0 if single else self._c(self.col, k))
                    if not single:   # a highlight stripe along the link: it is round
                        hi = perp * r * 0.35
                        _capsule(target, p + hi, q + hi, r * 0.25, self._c(self.col, k * 1.35))
                # joint caps and the suction spider
                jc = 1.0 if single else self._c(self.col * 0.5 + 40, 1.0)
                for c, r in ((elbow, 20 * u), (h, 14 * u)):
                    cv2.circle(target, tuple(np.round(c * 16).astype(int)), int(r * 16), jc, -1, cv2.LINE_AA, 4)
                arm_len = 55 * u
                for sgn in (-1, 1):
                    for vec in (self.out, perp):
                        q = h + vec * sgn * arm_len
                        _capsule(target, h, q, 4 * u, 1.0 if single else (90, 90, 95))
                        cv2.circle(target, tuple(np.round(q * 16).astype(int)), int(9 * u * 16),
                                   1.0 if single else (25, 25, 28), -1, cv2.LINE_AA, 4)
        else:
            wrist = h + self.out * 20 * u
            elbow = wrist + self.out * 0.55 * self.reach + perp * self.bend * 0.2 * self.reach
            far = elbow + self.out * 0.9 * self.reach
            for target in (img, mask):
                single = target is mask
                _capsule(target, elbow, far, 24 * u, 1.0 if single else self._c(self.sleeve, 1.0))
                _capsule(target, wrist, elbow, 16 * u, 1.0 if single else self._c(self.sleeve, 1.15))
                _capsule(target, wrist + self.out * 4 * u, wrist - self.out * 6 * u, 15 * u,
                         1.0 if single else self._c(self.col, 0.8))          # glove cuff
                cv2.ellipse(target, tuple(np.round(h * 16).astype(int)), (int(17 * u * 16), int(14 * u * 16)),
                            math.degrees(math.atan2(self.out[1], self.out[0])), 0, 360,
                            1.0 if single else self._c(self.col, 1.0), -1, cv2.LINE_AA, 4)
                for k in range(4):                                             # fingers
                    base = h - self.out * 10 * u + perp * (k - 1.5) * 7 * u
                    tip = base - self.out * (16 + 3 * (k in (1, 2))) * u
                    _capsule(target, base, tip, 3.6 * u, 1.0 if single else self._c(self.col, 0.95 + 0.04 * k))
                tb = h + perp * 12 * u * np.sign(self.bend)
                _capsule(target, tb, tb - self.out * 10 * u + perp * 6 * u * np.sign(self.bend), 4.2 * u,
                         1.0 if single else self._c(self.col, 0.9))


# --------------------------------------------------------------------------- timeline
def _ease(a: float, how: str = "inout") -> float:
    """Motion profile of a segment: "inout" starts and stops gently; "out" arrives at speed
    and slows down (entering the view); "in" speeds up and leaves at speed."""
    a = min(1.0, max(0.0, a))
    if how == "out":
        return 1.0 - (1.0 - a) ** 2
    if how == "in":
        return a * a
    return a * a * (3 - 2 * a)


@dataclass
class _Key:
    t: float
    x: float
    y: float
    lift: float
    ease: str = "inout"      # profile of the segment that ENDS at this key


def _at(keys: list[_Key], t: float) -> tuple[float, float, float]:
    if t <= keys[0].t:
        k = keys[0]
        return k.x, k.y, k.lift
    for a, b in zip(keys, keys[1:]):
        if t <= b.t:
            e = _ease((t - a.t) / max(b.t - a.t, 1e-6), b.ease)
            return a.x + (b.x - a.x) * e, a.y + (b.y - a.y) * e, a.lift + (b.lift - a.lift) * e
    k = keys[-1]
    return k.x, k.y, k.lift


@dataclass
class _Plan:
    cyc: Cycle
    kind: str
    arms: list[tuple[_Arm, np.ndarray]]       # (arm, head offset from the group point)
    keys: list[_Key]
    exit_keys: list[list[_Key]]               # per arm after release (two-hand carry splits)
    t_release: float
    t_end: float
    sheet: Optional[_Sheet] = None
    nudge: Optional[tuple[float, float, float]] = None
    nudge_t: tuple[float, float] = (0.0, 0.0)
    enter_f: Optional[int] = None
    last_f: Optional[int] = None
    release_f: int = 0


# --------------------------------------------------------------------------- renderer
class _Writer:
    def __init__(self, path: Path, W: int, H: int, fps: float, cam: Camera):
        self.codec = cam.codec
        path.parent.mkdir(parents=True, exist_ok=True)
        if cam.codec == "h264":
            import av
            self.av = av
            self.c = av.open(str(path), mode="w")
            self.s = self.c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            self.s.width, self.s.height, self.s.pix_fmt = W, H, "yuv420p"
            self.s.options = {"crf": str(cam.crf), "preset": "faster", "g": str(max(1, int(fps * 3)))}
        else:
            self.w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"),  # type: ignore[attr-defined]
                                     fps, (W, H))
            if not self.w.isOpened():
                raise RuntimeError(f"OpenCV cannot write {path}")

    def write(self, img: np.ndarray) -> None:
        if self.codec == "h264":
            for p in self.s.encode(self.av.VideoFrame.from_ndarray(img, format="bgr24")):
                self.c.mux(p)
        else:
            self.w.write(img)

    def close(self) -> None:
        if self.codec == "h264":
            for p in self.s.encode():
                self.c.mux(p)
            self.c.close()
        else:
            self.w.release()


def _default_colour(rng: np.random.Generator, st: Stage) -> tuple[int, int, int]:
    c = st.palette[int(rng.integers(len(st.palette)))]
    return tuple(int(v) for v in c)  # type: ignore[return-value]


def _plan(spec: StackSpec, stage: _Stage, rng: np.random.Generator) -> list[_Plan]:
    W, H, pad = stage.W, stage.H, stage.pad
    diag = math.hypot(W, H)
    reach = 0.9 * max(W, H)
    frame = np.array([pad, pad, pad + W, pad + H], np.float32)
    plans: list[_Plan] = []
    t = spec.lead_s
    identical_default = stage.st.identical
    for i, cyc in enumerate(spec.cycles):
        if i:
            t += max(0.0, cyc.gap_s)
        side = cyc.side or str(rng.choice(SIDES))
        colour = cyc.colour or _default_colour(rng, stage.st)
        kind = cyc.kind
        carrier = cyc.carrier or ("gripper" if kind in ("sheet", "empty", "hover") and rng.random() < 0.6 else "hands")
        if kind == "empty":
            carrier = "gripper"
        if kind in ("touch", "nudge"):
            carrier = "hands"
        speed = max(0.2, cyc.speed)
        v = 0.9 * diag * speed                       # px/s travel speed
        sheet = None
        if kind == "sheet":
            ident = identical_default if cyc.identical is None else cyc.identical
            sheet = stage.new_sheet(cyc, ident)
            target = np.array([sheet.cx, sheet.cy], np.float32)
        elif kind in ("touch", "nudge"):
            top = stage.stack[-1] if stage.stack else None
            c = top.corners() if top is not None else np.array([[stage.cx, stage.cy]] * 4, np.float32)
            k = int(rng.integers(4))                  # at an edge's middle
            target = (c[k] + c[(k + 1) % 4]) / 2.0 + rng.normal(0, 3 * stage.unit, 2).astype(np.float32)
        else:
            target = np.array([stage.cx, stage.cy], np.float32) + rng.normal(0, 0.04 * min(W, H), 2).astype(np.float32)
        d_in = np.array(_DIRS[side], np.float32)
        d_out = d_in
        # how far beyond the edge the head must be for nothing to show: the carried sheet
        # (lifted, so a little larger), the glove or spider, and the shadow (offset + blur)
        u = stage.unit
        sv = stage.shadow_vec

        def ext_along(d: np.ndarray) -> float:
            shadow = max(0.0, float(sv @ d)) * 66 * u + 40 * u
            e = 70 * u + shadow                       # spider or glove
            if sheet is not None:
                c = sheet.corners() - (sheet.cx, sheet.cy)
                e = max(e, 1.12 * float((c @ d).max()) + shadow + 4 * u)
            return e

        def off_point(d: np.ndarray) -> np.ndarray:
            # far enough along d that nothing (arm, sheet, shadow) is in view
            if d[0]:
                dist = (frame[2] - target[0]) if d[0] > 0 else (target[0] - frame[0])
            else:
                dist = (frame[3] - target[1]) if d[1] > 0 else (target[1] - frame[1])
            return target + d * (dist + ext_along(d))

        start, stop = off_point(d_in), off_point(d_out)
        arms: list[tuple[_Arm, np.ndarray]] = []
        if carrier == "hands" and kind == "sheet":
            # two people carry the sheet by opposite edges, entering from ``side``
            perp = np.array([-d_in[1], d_in[0]], np.float32)
            along = stage.sw / 2 if abs(perp[0]) > 0.5 else stage.sh / 2
            col2 = cyc.colour or _default_colour(rng, stage.st)
            for sgn, col in ((1.0, colour), (-1.0, col2)):
                od = perp * sgn * 0.8 + d_in * 0.6
                grip = perp * sgn * (along + 4 * stage.unit)
                arms.append((_Arm("hand", side, col, stage.unit, reach, rng, od), grip))
        else:
            arms.append((_Arm("gripper" if carrier == "gripper" else "hand", side, colour, stage.unit, reach, rng),
                         np.zeros(2, np.float32)))
        t_in = float(np.linalg.norm(target - start)) / v
        t_down = 0.3 / speed
        low = 0.5 if kind == "hover" else 0.0        # hovering never touches the stack
        keys = [_Key(t, *start, 1.0), _Key(t + t_in, *target, 0.9, "out"), _Key(t + t_in + t_down, *target, low)]
        t_rel = keys[-1].t
        nudge = None
        nudge_t = (t_rel, t_rel)
        if kind == "nudge":
            dx, dy = rng.uniform(2.0, 6.0) * stage.unit * rng.choice([-1, 1]), rng.uniform(0, 2.0) * rng.choice([-1, 1])
            if rng.random() < 0.5:
                dx, dy = dy, dx
            nudge = (float(dx), float(dy), float(rng.uniform(-1.2, 1.2)))
            nudge_t = (t_rel + 0.1, t_rel + 0.5 / speed)
            keys.append(_Key(nudge_t[0], *target, 0.0))
            keys.append(_Key(nudge_t[1], target[0] + nudge[0], target[1] + nudge[1], 0.0))
            t_rel = nudge_t[1]
        hold = {"touch": 0.3, "empty": 0.4}.get(kind, 0.05) / speed
        last = keys[-1]
        keys.append(_Key(last.t + hold, last.x, last.y, low))
        if cyc.linger_s > 0:                          # rest on/just above the stack after release
            keys.append(_Key(keys[-1].t + 0.15, last.x, last.y, 0.1))
            keys.append(_Key(keys[-1].t + cyc.linger_s, last.x + rng.normal(0, 3), last.y + rng.normal(0, 3), 0.12))
        if cyc.pause_s > 0 or kind == "hover":        # rise and stop over the stack
            p = max(cyc.pause_s, 0.8)
            keys.append(_Key(keys[-1].t + 0.3, last.x, last.y, 0.6))
            keys.append(_Key(keys[-1].t + p, last.x + rng.normal(0, 2), last.y + rng.normal(0, 2), 0.62))
        t_up = keys[-1].t + 0.2 / speed
        keys.append(_Key(t_up, keys[-1].x, keys[-1].y, 0.8))
        exits = []
        here = np.array([keys[-1].x, keys[-1].y], np.float32)
        for arm, off in arms:
            if len(arms) > 1:                          # each carrier withdraws along its own arm
                dest = here + off + arm.out * (float(np.linalg.norm(stop - here)) + ext_along(d_out) + reach * 0.2)
                dest -= off
            else:
                dest = stop + (here - target)
            t_out = float(np.linalg.norm(dest - here)) / v
            exits.append([_Key(t_up, *here, 0.8), _Key(t_up + t_out, *dest, 1.0, "in")])
        t_end = max(e[-1].t for e in exits)
        plans.append(_Plan(cyc, kind, arms, keys, exits, t_release=t_rel if kind != "hover" else keys[2].t,
                           t_end=t_end, sheet=sheet, nudge=nudge, nudge_t=nudge_t))
        if sheet is not None:
            stage.stack.append(sheet)                 # planned placement: the next sheet lands on it
        t = t_end
    # planning advanced the stack for placements; the renderer places them again
    return plans


def _pose(p: _Plan, k: int, t: float) -> tuple[np.ndarray, float]:
    if t <= p.exit_keys[k][0].t:
        x, y, lift = _at(p.keys, t)
    else:
        x, y, lift = _at(p.exit_keys[k], t)
    return np.array([x, y], np.float32) + p.arms[k][1], lift


def render_frames(spec: StackSpec, path: Optional[str | Path] = None) -> tuple[list[np.ndarray], StackTruth]:
    """Render ``spec``; with ``path`` the frames are written there (and not kept), without it
    they are returned (tests, tiny clips). Returns (frames, truth)."""
    frames: list[np.ndarray] = []
    truth = None
    for item in _render(spec, path):
        if isinstance(item, StackTruth):
            truth = item
        elif path is None:
            frames.append(item)
    assert truth is not None
    return frames, truth


def render_clip(spec: StackSpec, path: str | Path) -> StackTruth:
    """Render ``spec`` into the video at ``path``; returns its ground truth (``truth.path``)."""
    return render_frames(spec, path)[1]


def _render(spec: StackSpec, path: Optional[str | Path]) -> Iterator[Any]:
    W, H, fps = int(spec.width) // 2 * 2, int(spec.height) // 2 * 2, float(spec.fps)
    rng = np.random.default_rng(spec.seed)
    cam = spec.camera
    pad = max(0, int(cam.shake_px))
    stage = _Stage(rng, W, H, spec.stage, pad)
    for _ in range(max(0, spec.stage.initial)):
        stage.place(stage.new_sheet(Cycle(), spec.stage.identical))
    n_initial = len(stage.stack)
    plans = _plan(spec, stage, rng)
    stage.stack = stage.stack[:n_initial]
    t_end = (plans[-1].t_end if plans else spec.lead_s) + spec.tail_s
    n = int(math.ceil(t_end * fps))
    for p in plans:
        p.release_f = int(math.ceil(p.t_release * fps - 1e-9))

    # camera nuisances planned up front (deterministic)
    jumps = sorted(float(x) for x in rng.uniform(0.5, max(1.0, t_end - 0.5), cam.exposure_jumps))
    jump_gain = [float(rng.choice([-1, 1]) * rng.uniform(0.08, 0.16)) for _ in jumps]
    busy = [(p.keys[0].t - 0.5, p.t_end + 0.8) for p in plans]
    passes = []
    for _ in range(cam.shadow_passes):
        for _try in range(30):
            t0 = float(rng.uniform(0.3, max(0.4, t_end - 3.0)))
            if all(t0 + 2.5 < a or t0 > b for a, b in busy):
                passes.append((t0, float(rng.uniform(1.5, 2.5)), float(rng.uniform(0, 2 * math.pi))))
                busy.append((t0, t0 + 2.5))
                break
    bursts = [(float(x), float(x) + float(rng.uniform(0.6, 1.5))) for x in rng.uniform(0, t_end, 3)] \
        if cam.shake_bursts else []
    noise_bank = [rng.normal(0, cam.noise, (H, W, 3)).astype(np.int16) for _ in range(5)] if cam.noise > 0 else []
    band_y = np.arange(H, dtype=np.float32)[:, None, None] / H
    phase = rng.uniform(0, 2 * math.pi, 4)
    writer = _Writer(Path(path), W, H, fps, cam) if path is not None else None
    ae = 1.0
    shake = np.zeros(2, int)
    released: set[int] = set()
    work: Optional[np.ndarray] = None        # the float canvas the arms draw on (see below)
    work_base: Optional[np.ndarray] = None
    drawn: list[tuple[int, int, int, int]] = []
    try:
        for f in range(n):
            t = f / fps
            for i, p in enumerate(plans):
                if p.sheet is not None and i not in released and f >= p.release_f:
                    stage.place(p.sheet)
                    released.add(i)
                if p.nudge is not None and p.nudge_t[0] <= t and i not in released:
                    a = min(1.0, (t - p.nudge_t[0]) / max(1e-6, p.nudge_t[1] - p.nudge_t[0]))
                    done = getattr(p, "_done", 0.0)
                    if a > done:
                        k = a - done
                        stage.move_top(p.nudge[0] * k, p.nudge[1] * k, p.nudge[2] * k)
                        p._done = a  # type: ignore[attr-defined]
                    if a >= 1.0:
                        released.add(i)
            live = [(i, p) for i, p in enumerate(plans) if p.keys[0].t - 0.05 <= t <= p.t_end + 0.05]
            img = stage.canvas8
            cover, dark = 0.0, 0.0
            ox, oy = pad + shake[0], pad + shake[1]
            if pad:
                bursting = any(a <= t <= b for a, b in bursts) if cam.shake_bursts else True
                if bursting and rng.random() < 0.6:
                    shake = rng.integers(-pad, pad + 1, 2)
                elif not bursting:
                    shake = np.zeros(2, int)
                ox, oy = pad + shake[0], pad + shake[1]
            if live:
                # the arms draw on a float copy of the scene; only the boxes they drew in differ
                # from it (and from ``canvas8``, its uint8 image): those are put back before the
                # next frame and converted (a whole 1080p canvas copied and converted per frame
                # cost ~11 % of a render; the frames are the same, bit for bit)
                base = stage._top_canvas if stage.stack else stage.lit
                if work is None or work_base is not base:
                    work, work_base = base.copy(), base
                else:
                    for x0, y0, x1, y1 in drawn:
                        work[y0:y1, x0:x1] = base[y0:y1, x0:x1]
                drawn = []
                for i, p in live:
                    vis = _draw_plan(work, stage, p, t, f, (ox, oy), cam, drawn)
                    if vis:
                        cover += vis[0]
                        dark += vis[1]
                        if p.enter_f is None:
                            p.enter_f = f
                        p.last_f = f
                img = stage.canvas8.copy()
                for x0, y0, x1, y1 in drawn:
                    img[y0:y1, x0:x1] = np.clip(work[y0:y1, x0:x1], 0, 255).astype(np.uint8)
            # a person's shadow walking past (no arm, no event)
            for t0, dur, ang in passes:
                if t0 <= t <= t0 + dur:
                    img = _shadow_pass(img, (t - t0) / dur, ang, stage)
            frame = img[oy:oy + H, ox:ox + W]
            # light: drift x flicker x exposure steps x auto-exposure
            g = 1.0 + cam.drift * math.sin(2 * math.pi * t / max(cam.drift_period_s, 1e-3) + phase[0])
            if cam.flicker:
                g *= 1.0 + cam.flicker * math.sin(2 * math.pi * cam.mains_hz * t + phase[1])
            for tj, gj in zip(jumps, jump_gain):      # a sudden step, re-locking over ~1 s
                if t >= tj:
                    g *= 1.0 + gj * math.exp(-(t - tj) / 1.0)
            if cam.auto_exposure:
                target = 1.0 + cam.auto_exposure * min(1.0, cover / 0.08) * (1.0 if dark > cover / 2 else -0.6)
                ae += (target - ae) * min(1.0, 1.0 / fps / 0.25)
                g *= ae
            if cam.band:
                gains = g * (1.0 + cam.band * np.sin(2 * math.pi * (band_y * 1.7 - cam.mains_hz * t / 7.0) + phase[2]))
                frame = np.clip(frame.astype(np.float32) * gains, 0, 255).astype(np.uint8)
            elif abs(g - 1.0) > 1e-4:
                frame = cv2.convertScaleAbs(frame, alpha=g)
            if noise_bank:
                nb = noise_bank[int(rng.integers(len(noise_bank)))]
                frame = np.clip(frame.astype(np.int16) + nb, 0, 255).astype(np.uint8)
            if cam.jpeg > 0:
                ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(cam.jpeg)])
                frame = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            frame = np.ascontiguousarray(frame)
            if writer is not None:
                writer.write(frame)
            else:
                yield frame
    finally:
        if writer is not None:
            writer.close()

    events: list[EventTruth] = []
    count = 0
    for p in plans:
        enter = p.enter_f if p.enter_f is not None else p.release_f
        stable = (p.last_f + 1) if p.last_f is not None else p.release_f
        if p.sheet is not None:
            count += 1
            events.append(EventTruth("sheet", count, enter, p.release_f, min(stable, n - 1), p.sheet.box(pad),
                                     float(p.cyc.pause_s + p.cyc.linger_s)))
        else:
            events.append(EventTruth("hand", 0, enter, p.release_f, min(stable, n - 1), None, float(p.cyc.pause_s)))
    yield StackTruth(path=str(path) if path is not None else "", width=W, height=H, fps=fps, frames=n,
                     expected_count=count, events=events, spec=spec.to_dict())


def _shadow_pass(img: np.ndarray, a: float, ang: float, stage: _Stage) -> np.ndarray:
    """A large soft shadow crossing the scene (someone walking between lamp and bin)."""
    h, w = img.shape[:2]
    small = np.zeros((max(2, h // 8), max(2, w // 8)), np.float32)
    sh, sw = small.shape
    d = np.array([math.cos(ang), math.sin(ang)])
    c = np.array([sw / 2, sh / 2]) + d * (a - 0.5) * 1.6 * max(sw, sh)
    cv2.ellipse(small, (int(c[0]), int(c[1])), (max(1, int(0.18 * sw)), max(1, int(0.45 * sh))),
                math.degrees(ang), 0, 360, 1.0, -1)
    small = cv2.GaussianBlur(small, (0, 0), 0.06 * max(sw, sh))
    m = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return (img.astype(np.float32) * (1.0 - 0.22 * m)[..., None]).astype(np.uint8)


def _draw_plan(canvas: np.ndarray, stage: _Stage, p: _Plan, t: float, f: int, origin: tuple[int, int],
               cam: Camera, drawn: Optional[list[tuple[int, int, int, int]]] = None) -> Optional[tuple[float, float]]:
    """Draw the carriers (and a carried sheet) of ``p`` at time t onto the float canvas; returns
    (fraction of the view covered, fraction covered by dark parts) when anything of it, arm or
    shadow, is inside the output view, else None. The box drawn in is appended to ``drawn``."""
    CH, CW = canvas.shape[:2]
    ox, oy = origin
    view = (ox, oy, ox + stage.W, oy + stage.H)
    poses = [_pose(p, k, t) for k in range(len(p.arms))]
    carry = p.sheet is not None and f < p.release_f
    lift = max(lf for _, lf in poses)
    # ROI: around the heads, the carried sheet and the arms (which reach far out of view:
    # clip to the canvas)
    pts = [h for h, _ in poses]
    margin = int(stage.unit * 140 + 1)
    grp = None
    if carry:
        grp = np.array(_at(p.keys, t)[:2], np.float32)
        sc = 1.0 + 0.10 * lift
        c = p.sheet.corners(sc, grp[0] - p.sheet.cx, grp[1] - p.sheet.cy)
        pts.extend(list(c))
    reach_pts = []
    for (arm, _o), (h, _l) in zip(p.arms, poses):
        reach_pts.append(h + arm.out * 2.2 * arm.reach)
    allp = np.array(pts + reach_pts, np.float32)
    roi = _roi(allp, (CH, CW), margin)
    if roi is None:
        return None
    x0, y0, x1, y1 = roi
    if drawn is not None:
        drawn.append(roi)
    rh, rw = y1 - y0, x1 - x0
    sv = stage.shadow_vec * (6 + 60 * lift) * stage.unit
    mask = np.zeros((rh, rw), np.float32)
    paint = np.zeros((rh, rw, 3), np.float32)
    for (arm, _o), (h, lf) in zip(p.arms, poses):
        arm.draw(paint, mask, h, lf, np.array([x0, y0], np.float32))
    smask = np.zeros((rh, rw), np.float32)
    if carry:
        c = p.sheet.corners(sc, grp[0] - p.sheet.cx, grp[1] - p.sheet.cy)
        cv2.fillPoly(smask, [np.round((c - (x0, y0)) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    shadow_src = np.maximum(mask, smask)
    M = np.float32([[1, 0, sv[0]], [0, 1, sv[1]]])
    sh = cv2.warpAffine(shadow_src, M, (rw, rh))
    blur = 2.0 + 10.0 * lift * stage.unit
    sh = cv2.GaussianBlur(sh, (0, 0), blur)
    strength = 0.5 - 0.25 * lift
    roi_c = canvas[y0:y1, x0:x1]
    roi_c *= (1.0 - strength * sh)[..., None]
    # blends in place (float32 throughout: the same operations as ``roi·(1 − a) + x·a``, without
    # the temporaries)
    if carry:
        lit, a = stage.lit_sheet(p.sheet, roi, sc, grp[0] - p.sheet.cx, grp[1] - p.sheet.cy, lift)
        roi_c *= (1 - a[..., None])
        lit *= a[..., None]
        roi_c += lit
    am = mask[..., None]
    illum = stage.illum[y0:y1, x0:x1, None] * (1.0 + 0.1 * lift)
    paint *= illum
    np.clip(paint, 0, 255, out=paint)
    paint *= am
    roi_c *= (1 - am)
    roi_c += paint
    if carry:
        mask = np.maximum(mask, a)
    # visibility in the output view: any arm/sheet pixel or a shadow darker than ~1 %
    vx0, vy0, vx1, vy1 = max(view[0], x0) - x0, max(view[1], y0) - y0, min(view[2], x1) - x0, min(view[3], y1) - y0
    if vx1 <= vx0 or vy1 <= vy0:
        return None
    vm = mask[vy0:vy1, vx0:vx1]
    vs = sh[vy0:vy1, vx0:vx1] * strength
    if not (vm > 0.02).any() and not (vs > 0.01).any():
        return None
    cover = float((vm > 0.5).sum()) / (stage.W * stage.H)
    darkness = float(np.mean([np.mean(arm.col) for arm, _ in p.arms])) < 90
    return cover, (cover if darkness else 0.0)


# --------------------------------------------------------------------------- sets
_TUNE = dict(
    sizes=[(640, 480, 30), (960, 540, 25), (640, 480, 15), (1280, 720, 15), (1920, 1080, 10), (960, 540, 20)],
    floors=["asphalt", "concrete_light", "planks"],
    bins=["painted_yellow", "plastic_black", "table_light"],
    paints=[(0.62, 0.42, 0.22), (0.30, 0.55, 0.25), (0.22, 0.25, 0.62)],       # blue, green, red (BGR)
    palette=[(40, 110, 235), (200, 120, 40), (235, 235, 235), (120, 120, 120), (30, 30, 30)],
    near=[(2, 0), (0, 3), (-2, 1), (1, -2), (3, 3), (-1, -3), (2, -1), (0, 2), (-3, 0), (1, 1)],
    seed0=7100,
    dark_paint=(0.42, 0.28, 0.20),          # navy: the category clips only
)
_HELD = dict(
    sizes=[(640, 480, 20), (960, 540, 12), (640, 480, 24), (1280, 720, 24), (1920, 1080, 15), (960, 540, 30)],
    floors=["epoxy_green", "rubber_dark", "epoxy_grey"],
    bins=["steel_dark", "white", "plastic_blue"],
    paints=[(0.80, 0.88, 0.90), (0.50, 0.50, 0.48), (0.20, 0.45, 0.85)],       # cream, grey, orange
    palette=[(60, 170, 60), (40, 40, 200), (20, 200, 230), (150, 60, 140), (70, 60, 50)],
    near=[(0, 2), (3, -1), (-2, -2), (1, 3), (-3, 1), (2, 2), (-1, 2), (3, 0), (0, -3), (-2, 1)],
    seed0=9300,
)
# a second held-out set, added after the first had been looked at: other seeds, sizes/fps,
# floors, bins, paints and arm colours again (none shared with tune or heldout)
_HELD2 = dict(
    sizes=[(800, 600, 25), (1024, 576, 15), (720, 480, 18), (1280, 720, 25), (1600, 900, 12), (854, 480, 30)],
    floors=["concrete_dark", "tile_terracotta", "steel_deck"],
    bins=["painted_green", "plastic_grey", "crate_orange"],
    paints=[(0.35, 0.30, 0.30), (0.70, 0.70, 0.72), (0.15, 0.60, 0.70)],       # dark navy, silver, olive (BGR)
    palette=[(180, 180, 60), (90, 30, 160), (0, 140, 255), (200, 200, 140), (45, 80, 30)],
    near=[(1, 2), (-3, -1), (2, -3), (0, -2), (3, 2), (-2, 3), (1, -1), (-1, 0), (2, 3), (-3, 2)],
    seed0=12700,
)
# a third held-out set, fixed before the final run and never looked at before it: other seeds,
# sizes/fps, floors, bins, paints and arm colours again (none shared with any other set)
_HELD3 = dict(
    sizes=[(1024, 768, 20), (1152, 648, 14), (768, 432, 28), (1280, 720, 20), (1920, 1080, 12), (720, 540, 16)],
    floors=["linoleum_blue", "concrete_polished", "plywood"],
    bins=["painted_red", "steel_light", "plastic_green"],
    paints=[(0.25, 0.20, 0.15), (0.85, 0.85, 0.84), (0.30, 0.35, 0.55)],       # slate, white, brown (BGR)
    palette=[(255, 90, 0), (20, 20, 120), (160, 160, 160), (0, 200, 120), (210, 150, 90)],
    near=[(-1, 3), (2, 1), (-3, -2), (3, -3), (0, 1), (-2, 0), (1, -3), (2, 2), (-1, -1), (3, 1)],
    seed0=15100,
    dark_paint=(0.22, 0.15, 0.24),          # dark plum: the category clips only
)
# a fourth held-out set, fixed after heldout3 had been looked at (its final run showed that a
# reduced analysis rate during arm cycles lost sheets; the fix was made on tuning clips):
# other seeds, sizes/fps, floors, bins, paints and arm colours again
_HELD4 = dict(
    sizes=[(896, 672, 22), (1120, 630, 18), (704, 528, 26), (1280, 720, 18), (1920, 1080, 14), (832, 468, 24)],
    floors=["rubber_blue", "concrete_warm", "terrazzo"],
    bins=["plastic_red", "steel_blue", "painted_white"],
    paints=[(0.55, 0.25, 0.10), (0.45, 0.45, 0.45), (0.10, 0.35, 0.20)],       # blue, mid grey, dark green (BGR)
    palette=[(220, 60, 60), (60, 220, 220), (120, 40, 200), (255, 255, 0), (100, 100, 180)],
    near=[(2, -2), (-1, 2), (3, 0), (0, -1), (-3, 3), (1, 2), (-2, -1), (2, 3), (-1, 0), (3, -2)],
    seed0=17300,
    dark_paint=(0.30, 0.18, 0.12),          # deep blue: the category clips only
)
# a fifth held-out set, fixed at the start of session 4 before any tuning of that session
# (every earlier held-out set had been looked at): other seeds, sizes/fps, floors, bins, paints
# and arm colours again; looked at once, in the session's final run
_HELD5 = dict(
    sizes=[(768, 576, 21), (1088, 612, 13), (672, 504, 27), (1280, 720, 21), (1920, 1080, 16), (896, 504, 19)],
    floors=["granite_dark", "rubber_green", "concrete_sand"],
    bins=["plastic_yellow", "steel_galv", "painted_black"],
    paints=[(0.45, 0.62, 0.78), (0.58, 0.56, 0.30), (0.24, 0.24, 0.25)],       # beige, teal, charcoal (BGR)
    palette=[(90, 200, 250), (200, 80, 200), (30, 90, 30), (240, 240, 200), (0, 0, 160)],
    near=[(-2, 3), (3, 1), (1, -2), (-3, -1), (2, 0), (0, 3), (-1, -2), (3, 3), (-2, 2), (1, 0)],
    seed0=19500,
    dark_paint=(0.16, 0.22, 0.14),          # dark olive: the category clips only
)
# a sixth held-out set, fixed in session 4 after heldout5 had been looked at and before any
# tuning on the categories it showed; looked at once, in the session's last run
_HELD6 = dict(
    sizes=[(720, 576, 23), (1152, 648, 17), (800, 600, 11), (1280, 720, 17), (1920, 1080, 11), (960, 540, 17)],
    floors=["slate_tile", "rubber_red", "concrete_pale"],
    bins=["plastic_orange", "steel_brushed", "painted_navy"],
    paints=[(0.30, 0.50, 0.45), (0.66, 0.64, 0.60), (0.50, 0.20, 0.45)],       # olive-khaki, light grey, purple (BGR)
    palette=[(140, 200, 90), (60, 60, 90), (200, 140, 255), (10, 120, 180), (230, 230, 230)],
    near=[(1, -3), (-2, 2), (3, 2), (0, -2), (-3, 0), (2, -1), (-1, 3), (2, 2), (-2, -3), (1, 1)],
    seed0=21700,
    dark_paint=(0.20, 0.12, 0.18),          # dark aubergine: the category clips only
)
# a seventh held-out set, fixed at the start of session 5 before any of its tuning (every
# earlier held-out set had been looked at); looked at once, in the session's last run
_HELD7 = dict(
    sizes=[(864, 648, 24), (1216, 684, 15), (640, 480, 29), (1280, 720, 23), (1920, 1080, 13), (1024, 576, 20)],
    floors=["basalt", "resin_teal", "concrete_stained"],
    bins=["plastic_purple", "steel_oxide", "painted_cream"],
    paints=[(0.20, 0.42, 0.60), (0.52, 0.58, 0.62), (0.40, 0.28, 0.18)],       # rust-orange, pale steel, dark slate-blue (BGR)
    palette=[(0, 220, 255), (150, 60, 20), (80, 160, 80), (250, 200, 220), (40, 40, 40)],
    near=[(2, 1), (-3, 2), (1, 3), (-1, -3), (3, -1), (0, 2), (-2, -2), (3, 3), (-1, 1), (2, -2)],
    seed0=23900,
    dark_paint=(0.14, 0.18, 0.22),          # dark brown: the category clips only
)
# an eighth held-out set, fixed at the start of session 6 before any of its work (every
# earlier held-out set had been looked at); looked at once in a final run of that session, then
# run again as a regression check after one more engine change
_HELD8 = dict(
    sizes=[(800, 600, 22), (1152, 648, 18), (704, 528, 27), (1280, 720, 26), (1920, 1080, 23), (1056, 594, 19)],
    floors=["asphalt_grey", "epoxy_ochre", "deck_plate_grey"],
    bins=["plastic_lime", "steel_gunmetal", "painted_sky"],
    paints=[(0.30, 0.55, 0.35), (0.62, 0.60, 0.58), (0.22, 0.20, 0.48)],       # olive green, light grey, oxblood (BGR)
    palette=[(30, 120, 240), (200, 200, 200), (120, 40, 160), (60, 180, 200), (20, 20, 90)],
    near=[(1, 2), (-2, 3), (3, 1), (-3, -1), (2, -3), (1, -2), (-1, 3), (2, 2), (-2, 1), (3, -2)],
    seed0=26300,
    dark_paint=(0.16, 0.14, 0.12),          # dark charcoal-blue: the category clips only
)
# a ninth held-out set, fixed in session 6 after heldout8's only look, before the work that
# followed it; looked at once, in that session's last run
_HELD9 = dict(
    sizes=[(832, 624, 21), (1120, 630, 16), (736, 552, 28), (1280, 720, 28), (1920, 1080, 26), (1216, 684, 22)],
    floors=["cork_brown", "screed_grey", "vinyl_charcoal"],
    bins=["plastic_teal", "steel_zinc", "painted_brick"],
    paints=[(0.50, 0.30, 0.20), (0.70, 0.72, 0.74), (0.15, 0.40, 0.55)],       # steel blue, silver, ochre (BGR)
    palette=[(0, 90, 200), (230, 230, 60), (90, 200, 90), (190, 70, 210), (60, 60, 60)],
    near=[(-1, 2), (3, 2), (-2, -3), (2, -1), (1, 3), (-3, 1), (2, 2), (-1, -2), (3, -3), (0, 2)],
    seed0=28700,
    dark_paint=(0.12, 0.16, 0.20),          # dark bronze: the category clips only
)
# a tenth held-out set, fixed at the start of session 7 before any of its work (every earlier
# held-out set had been looked at); to be looked at once, in that session's last run
_HELD10 = dict(
    sizes=[(848, 636, 19), (1184, 666, 14), (752, 564, 26), (1280, 720, 22), (1920, 1080, 18), (1088, 612, 25)],
    floors=["quarry_tile_red", "concrete_smooth", "rubber_graphite"],
    bins=["plastic_magenta", "steel_satin", "painted_mint"],
    paints=[(0.40, 0.48, 0.30), (0.58, 0.60, 0.63), (0.28, 0.22, 0.40)],       # sage, light silver, maroon (BGR)
    palette=[(250, 130, 60), (40, 200, 160), (170, 170, 40), (100, 30, 220), (110, 110, 110)],
    near=[(2, -3), (-1, -2), (3, 2), (-2, 3), (1, -1), (-3, -2), (2, 1), (0, -3), (-2, 0), (3, 1)],
    seed0=31100,
    dark_paint=(0.18, 0.10, 0.10),          # dark indigo: the category clips only
)
# an eleventh held-out set, fixed at the start of session 8 before any of its work (every
# earlier held-out set had been looked at); to be looked at once, in that session's last run
_HELD11 = dict(
    sizes=[(912, 684, 23), (1248, 702, 12), (688, 516, 29), (1280, 720, 27), (1920, 1080, 20), (1008, 756, 24)],
    floors=["terrazzo_cream", "plywood_pale", "slate_bluegrey"],
    bins=["plastic_violet", "steel_pewter", "painted_salmon"],
    paints=[(0.25, 0.45, 0.55), (0.66, 0.66, 0.64), (0.45, 0.30, 0.22)],       # mustard, pale grey, dusk blue (BGR)
    palette=[(20, 160, 250), (180, 60, 60), (60, 230, 120), (220, 220, 120), (90, 70, 130)],
    near=[(-2, -1), (3, -2), (1, 3), (-3, 2), (2, 2), (-1, -3), (3, 0), (0, 2), (-2, 3), (1, -2)],
    seed0=33500,
    dark_paint=(0.12, 0.12, 0.18),          # dark maroon-brown: the category clips only
)
# a twelfth held-out set, fixed at the start of session 9 before any of its work (every
# earlier held-out set had been looked at); to be looked at once, in that session's last run
_HELD12 = dict(
    sizes=[(976, 732, 18), (1312, 738, 13), (656, 492, 22), (1280, 720, 29), (1920, 1080, 28), (1040, 780, 16)],
    floors=["magnesite_beige", "rubber_olive", "steel_plate_worn"],
    bins=["plastic_aqua", "steel_bronze", "painted_lilac"],
    paints=[(0.20, 0.35, 0.30), (0.74, 0.74, 0.70), (0.55, 0.42, 0.36)],       # khaki, off-white, slate blue (BGR)
    palette=[(50, 30, 190), (200, 120, 30), (150, 220, 220), (80, 160, 60), (140, 100, 200)],
    near=[(2, 3), (-3, 1), (1, -3), (3, 3), (-2, -2), (0, 3), (-3, 0), (2, -2), (-1, 2), (3, -1)],
    seed0=35900,
    dark_paint=(0.14, 0.17, 0.13),          # dark olive-grey: the category clips only
)
# a thirteenth held-out set, fixed at the start of session 10 before any of its work (every
# earlier held-out set had been looked at); to be looked at once, in that session's last run
_HELD13 = dict(
    sizes=[(944, 708, 21), (1344, 756, 14), (624, 468, 25), (1280, 720, 19), (1920, 1080, 21), (1072, 804, 17)],
    floors=["brick_pavers", "epoxy_slate", "concrete_oily"],
    bins=["plastic_cobalt", "steel_graphite", "painted_sand"],
    paints=[(0.30, 0.30, 0.62), (0.62, 0.66, 0.58), (0.24, 0.40, 0.22)],       # brick red, pale celadon, moss green (BGR)
    palette=[(230, 90, 20), (30, 110, 240), (190, 190, 190), (120, 40, 120), (40, 180, 210)],
    near=[(-3, 3), (2, 0), (-1, -3), (3, -2), (0, -2), (-2, 1), (1, 3), (3, 2), (-3, -1), (2, -3)],
    seed0=38300,
    dark_paint=(0.10, 0.14, 0.20),          # dark rust brown: the category clips only
)
# a fourteenth held-out set, fixed at the end of session 10 (after heldout13's only look, before
# the next session's work; not rendered then); to be looked at once, in that work's last run
_HELD14 = dict(
    sizes=[(880, 660, 20), (1376, 774, 12), (592, 444, 28), (1280, 720, 16), (1920, 1080, 24), (1104, 828, 15)],
    floors=["asphalt_sealed", "tile_sage", "concrete_chalky"],
    bins=["plastic_crimson", "steel_cold", "painted_forest"],
    paints=[(0.58, 0.48, 0.20), (0.30, 0.60, 0.75), (0.45, 0.45, 0.52)],       # steel blue, amber, warm grey (BGR)
    palette=[(10, 200, 250), (240, 60, 120), (90, 90, 200), (215, 215, 215), (60, 140, 90)],
    near=[(1, 3), (-2, -3), (3, -1), (-1, 1), (2, 2), (-3, 3), (0, -2), (2, -1), (-2, 2), (3, 0)],
    seed0=42700,
    dark_paint=(0.16, 0.12, 0.08),          # dark navy: the category clips only
)
# a fifteenth held-out set, fixed at the end of session 11 (after heldout14's only look, before
# the next session's work; not rendered then); to be looked at once, in that work's last run
_HELD15 = dict(
    sizes=[(912, 684, 19), (1312, 738, 11), (576, 432, 27), (1280, 720, 30), (1920, 1080, 22), (1040, 780, 13)],
    floors=["terrazzo_speckled", "asphalt_cracked", "epoxy_saffron"],
    bins=["plastic_lilac", "steel_weathered", "painted_ivory"],
    paints=[(0.20, 0.55, 0.45), (0.70, 0.40, 0.35), (0.35, 0.35, 0.38)],       # olive, slate blue, graphite (BGR)
    palette=[(5, 145, 250), (205, 195, 45), (155, 65, 205), (45, 40, 35), (125, 215, 125)],
    near=[(2, -2), (-3, 0), (1, 2), (-2, -1), (3, 3), (0, 3), (-1, -2), (2, 1), (-3, 2), (1, -3)],
    seed0=47100,
    dark_paint=(0.08, 0.16, 0.10),          # dark bottle green: the category clips only
)
# a sixteenth held-out set, fixed at the end of session 12 (after heldout15's only look, before
# the next session's work; not rendered then); to be looked at once, in that work's last run
_HELD16 = dict(
    sizes=[(960, 720, 23), (1408, 792, 17), (608, 456, 24), (1280, 720, 14), (1920, 1080, 19), (1136, 852, 21)],
    floors=["concrete_polished_warm", "rubber_maroon", "plank_grey"],
    bins=["plastic_amber", "steel_darkened", "painted_coral"],
    paints=[(0.25, 0.30, 0.62), (0.62, 0.62, 0.30), (0.55, 0.52, 0.50)],       # brick red, teal, pale grey (BGR)
    palette=[(30, 170, 220), (230, 110, 30), (80, 50, 170), (190, 190, 195), (50, 120, 40)],
    near=[(-2, 3), (3, -2), (1, -1), (-3, -3), (2, 0), (0, -3), (-1, 2), (3, 1), (-2, -2), (1, 3)],
    seed0=51500,
    dark_paint=(0.10, 0.08, 0.14),          # dark maroon: the category clips only
)
# a seventeenth held-out set, fixed at the end of session 13 (after heldout16's only look, before
# the next session's work; not rendered then); to be looked at once, in that work's last run
_HELD17 = dict(
    sizes=[(1024, 768, 26), (1440, 810, 16), (560, 420, 20), (1280, 720, 12), (1920, 1080, 27), (1168, 876, 18)],
    floors=["terrazzo_rose", "asphalt_tarred", "epoxy_jade"],
    bins=["plastic_navy", "steel_bright", "painted_pistachio"],
    paints=[(0.20, 0.45, 0.40), (0.70, 0.45, 0.35), (0.35, 0.35, 0.36)],       # olive, steel blue, graphite (BGR)
    palette=[(20, 140, 240), (210, 60, 120), (60, 200, 200), (170, 170, 175), (90, 40, 30)],
    near=[(2, -3), (-3, 1), (0, 2), (3, 3), (-1, -2), (2, 2), (-2, 0), (1, -3), (-3, 2), (0, -1)],
    seed0=55900,
    dark_paint=(0.14, 0.10, 0.08),          # dark slate: the category clips only
)
# an eighteenth held-out set, fixed at the end of session 14 (after heldout17's only look, before
# the next session's work; not rendered then); to be looked at once, in that work's last run
_HELD18 = dict(
    sizes=[(1072, 804, 24), (1504, 846, 18), (544, 408, 22), (1280, 720, 13), (1920, 1080, 25), (1232, 924, 17)],
    floors=["terrazzo_charcoal", "screed_ochre", "vinyl_sand"],
    bins=["plastic_olive", "steel_hazed", "painted_mauve"],
    paints=[(0.55, 0.35, 0.25), (0.30, 0.50, 0.65), (0.40, 0.40, 0.42)],       # denim, sand, slate (BGR)
    palette=[(0, 120, 255), (200, 90, 20), (120, 220, 160), (225, 228, 232), (70, 30, 90)],
    near=[(-3, -2), (2, 3), (0, -3), (3, -1), (-2, 2), (1, 1), (-1, -3), (3, 2), (-3, 0), (2, -2)],
    seed0=60300,
    dark_paint=(0.09, 0.12, 0.15),          # dark umber: the category clips only
)
# a nineteenth held-out set, fixed at the end of session 15 (after heldout18's only look, before
# the next session's work; rendered then by a comparison tool by mistake, its counts deleted
# unread); to be looked at once, in that work's last run
_HELD19 = dict(
    sizes=[(1104, 828, 25), (1536, 864, 16), (528, 396, 21), (1280, 720, 11), (1920, 1080, 17), (1264, 948, 15)],
    floors=["quartz_flecked", "rubber_petrol", "concrete_rough_dark"],
    bins=["plastic_rust", "steel_matt_dark", "painted_turquoise"],
    paints=[(0.30, 0.25, 0.55), (0.45, 0.60, 0.45), (0.50, 0.48, 0.44)],       # plum, sage, warm grey (BGR)
    palette=[(10, 100, 230), (180, 140, 60), (90, 160, 230), (210, 212, 215), (40, 60, 20)],
    near=[(3, 0), (-2, -3), (1, 3), (-3, 1), (2, -2), (0, -2), (-1, 3), (3, -3), (-2, 1), (1, 2)],
    seed0=64700,
    dark_paint=(0.12, 0.09, 0.07),          # dark navy: the category clips only
)
# a twentieth held-out set, fixed in session 16 before its last run (heldout19's project-renderer
# half had been looked at early in that session by mistake); to be looked at once, in that run
_HELD20 = dict(
    sizes=[(1136, 852, 27), (1568, 882, 19), (512, 384, 17), (1280, 720, 10), (1920, 1080, 29), (1296, 972, 21)],
    floors=["cork_tiles", "epoxy_cobalt", "tarmac_fresh"],
    bins=["plastic_seafoam", "steel_brushed_warm", "painted_lemon"],
    paints=[(0.25, 0.40, 0.60), (0.55, 0.50, 0.30), (0.42, 0.44, 0.40)],       # terracotta, teal grey, pewter (BGR)
    palette=[(40, 80, 200), (160, 200, 40), (200, 120, 200), (205, 205, 200), (20, 40, 60)],
    near=[(-1, 3), (3, 2), (-3, -1), (2, -3), (0, 3), (-2, -2), (3, -1), (1, 2), (-3, 3), (2, 1)],
    seed0=69100,
    dark_paint=(0.08, 0.12, 0.10),          # dark moss: the category clips only
)
# a twenty-first held-out set, fixed at the end of session 16 (after heldout20's only look, before
# the next session's work; not rendered then); to be looked at once, in that work's last run
_HELD21 = dict(
    sizes=[(1216, 912, 22), (1632, 918, 13), (496, 372, 19), (1280, 720, 12.5), (1920, 1080, 30), (1344, 1008, 16)],
    floors=["linoleum_grey", "epoxy_plum", "concrete_swept"],
    bins=["plastic_charcoal", "steel_blued", "painted_apricot"],
    paints=[(0.60, 0.45, 0.30), (0.30, 0.55, 0.55), (0.46, 0.46, 0.48)],       # steel blue, khaki, cool grey (BGR)
    palette=[(0, 90, 180), (220, 180, 90), (140, 60, 200), (215, 215, 220), (30, 30, 40)],
    near=[(2, 3), (-3, -2), (3, -2), (-1, 2), (1, -3), (-2, 3), (3, 1), (0, 2), (-3, -1), (2, -1)],
    seed0=73500,
    dark_paint=(0.11, 0.10, 0.13),          # dark aubergine: the category clips only
)
# a twenty-second held-out set, fixed at the end of session 17 (after heldout21's only look, before
# the next session's work; not rendered then); to be looked at once, in that work's last run
_HELD22 = dict(
    sizes=[(1248, 936, 23), (1664, 936, 14), (480, 360, 26), (1280, 720, 15000 / 1001), (1920, 1080, 24000 / 1001), (1392, 1044, 17)],
    floors=["slate_tiles", "epoxy_teal", "asphalt_resealed"],
    bins=["plastic_mint", "steel_frosted", "painted_peach"],
    paints=[(0.35, 0.50, 0.62), (0.58, 0.52, 0.40), (0.44, 0.45, 0.47)],       # sand, slate blue, graphite (BGR)
    palette=[(25, 135, 245), (200, 100, 40), (80, 200, 120), (220, 218, 210), (50, 20, 30)],
    near=[(-2, 3), (3, 3), (-3, 2), (1, -2), (2, 2), (-1, -3), (3, 0), (-2, -1), (0, 3), (1, -1)],
    seed0=77900,
    dark_paint=(0.10, 0.13, 0.09),          # dark bottle green: the category clips only
)
# a twenty-third held-out set, fixed at the end of session 18 (after heldout22's only look, before
# the next session's work; not rendered then); to be looked at once, in that work's last run
_HELD23 = dict(
    sizes=[(1312, 984, 24), (1696, 954, 15), (464, 348, 27), (1280, 720, 20000 / 1001), (1920, 1080, 30000 / 1001), (1424, 1068, 18)],
    floors=["terrazzo_grey", "epoxy_mustard", "rubber_studded"],
    bins=["plastic_orchid", "steel_oiled", "painted_lime"],
    paints=[(0.30, 0.42, 0.70), (0.62, 0.60, 0.52), (0.52, 0.52, 0.50)],       # terracotta, powder blue, pewter (BGR)
    palette=[(240, 90, 30), (30, 200, 220), (160, 40, 160), (205, 210, 215), (15, 25, 45)],
    near=[(2, -3), (-3, -2), (3, 2), (-1, 3), (-2, -2), (1, 3), (0, -3), (3, -1), (-3, 0), (2, 1)],
    seed0=82300,
    dark_paint=(0.14, 0.09, 0.08),          # dark navy: the category clips only
)
# a twenty-fourth held-out set, fixed at the end of session 19 (after heldout23's only look, before
# the next session's work; not rendered then); to be looked at once, in that work's last run
_HELD24 = dict(
    sizes=[(1376, 1032, 21), (1728, 972, 17), (448, 336, 25), (1280, 720, 24000 / 1001), (1920, 1080, 12.5), (1456, 1092, 19)],
    floors=["quartzite_white", "epoxy_rust", "rubber_speckled_blue"],
    bins=["plastic_coral", "steel_anodised", "painted_plum"],
    paints=[(0.25, 0.50, 0.50), (0.55, 0.45, 0.75), (0.47, 0.49, 0.51)],       # olive, rose, steel grey (BGR)
    palette=[(60, 180, 250), (185, 65, 55), (90, 160, 40), (212, 218, 222), (40, 30, 20)],
    near=[(-3, 1), (2, 3), (-1, -3), (3, -2), (-2, 2), (1, -1), (3, 3), (-3, -1), (0, 2), (2, -3)],
    seed0=86700,
    dark_paint=(0.08, 0.07, 0.17),          # dark maroon: the category clips only
)
# a twenty-fifth held-out set, fixed at the end of session 20 (after heldout24's only look, before
# the next session's work; not rendered then); to be looked at once, in that work's last run
_HELD25 = dict(
    sizes=[(1440, 1080, 20), (1760, 990, 18), (432, 324, 23), (1280, 720, 30000 / 1001), (1920, 1080, 20000 / 1001), (1488, 1116, 21)],
    floors=["basalt_honed", "epoxy_lilac", "cork_composite"],
    bins=["plastic_sky", "steel_galv_bright", "painted_olive"],
    paints=[(0.60, 0.38, 0.28), (0.28, 0.38, 0.60), (0.43, 0.44, 0.42)],       # slate violet, rust, ash grey (BGR)
    palette=[(20, 120, 230), (210, 150, 60), (60, 190, 90), (200, 205, 210), (35, 25, 35)],
    near=[(3, -1), (-2, -3), (1, 3), (-3, 2), (2, -2), (-1, 1), (3, 2), (-2, 0), (0, -3), (1, 2)],
    seed0=91100,
    dark_paint=(0.06, 0.14, 0.12),          # dark olive: the category clips only
)
# a twenty-sixth held-out set, fixed in session 21 (after heldout25's only look, as the one change it
# led to was being made; not looked at before); looked at once, in that session's last run
_HELD26 = dict(
    sizes=[(1472, 1104, 22), (1792, 1008, 19), (416, 312, 24), (1280, 720, 12000 / 1001), (1920, 1080, 15000 / 1001), (1520, 1140, 20)],
    floors=["granite_speckled", "epoxy_seafoam", "linoleum_brown"],
    bins=["plastic_pistachio", "steel_heat_tinted", "painted_dune"],
    paints=[(0.30, 0.50, 0.62), (0.55, 0.25, 0.45), (0.36, 0.36, 0.34)],       # sand, plum, graphite (BGR)
    palette=[(40, 200, 240), (180, 60, 160), (80, 100, 210), (220, 220, 220), (50, 50, 50)],
    near=[(-3, 1), (2, 3), (-1, -2), (3, -3), (0, 2), (-2, -1), (1, -3), (3, 0), (-3, -2), (2, 1)],
    seed0=95500,
    dark_paint=(0.10, 0.08, 0.16),          # dark maroon: the category clips only
)
# a twenty-seventh held-out set, fixed at the end of session 21 (after heldout26's only look, before
# the next session's work; not rendered then); to be looked at once, in that work's last run
_HELD27 = dict(
    sizes=[(1504, 1128, 19), (1824, 1026, 21), (400, 300, 22), (1280, 720, 50 / 3), (1920, 1080, 12000 / 1001), (1552, 1164, 23)],
    floors=["sandstone_flags", "epoxy_coral", "rubber_ribbed_green"],
    bins=["plastic_lavender", "steel_patinated", "painted_ochre"],
    paints=[(0.25, 0.55, 0.50), (0.50, 0.40, 0.25), (0.40, 0.42, 0.45)],       # olive green, steel blue, pewter (BGR)
    palette=[(150, 90, 40), (110, 200, 120), (230, 215, 225), (60, 45, 35), (30, 140, 255)],
    near=[(2, -2), (-3, 3), (1, 2), (-2, -3), (3, 1), (0, -2), (-1, 3), (2, 0), (-3, -1), (1, -1)],
    seed0=99900,
    dark_paint=(0.14, 0.10, 0.06),          # dark navy: the category clips only
)
# a twenty-eighth held-out set, fixed in session 22 while heldout27's only look was running (before
# any of its figures were read; not rendered then); to be looked at once, in a later session's last run
_HELD28 = dict(
    sizes=[(1696, 1272, 20), (1888, 1062, 22), (384, 288, 21), (1280, 720, 16000 / 1001), (1920, 1080, 50 / 3), (1584, 1188, 24)],
    floors=["flagstone_blue", "epoxy_navy", "rubber_coin_grey"],
    bins=["plastic_peach", "steel_satin_cool", "painted_jade"],
    paints=[(0.30, 0.30, 0.60), (0.55, 0.55, 0.35), (0.35, 0.60, 0.60)],       # brick red, teal grey, sand (BGR)
    palette=[(170, 60, 60), (90, 210, 200), (215, 230, 240), (40, 55, 70), (205, 95, 150)],
    near=[(-2, 2), (3, -3), (-1, -2), (2, 3), (-3, -1), (0, 2), (1, -3), (-2, 0), (3, 1), (-1, 1)],
    seed0=104300,
    dark_paint=(0.08, 0.10, 0.16),          # dark oxblood: the category clips only
)
# every set: (clip name prefix, its settings), in the order they were fixed
_SETS = {"tune": ("t", _TUNE), "heldout": ("h", _HELD), "heldout2": ("h2", _HELD2), "heldout3": ("h3", _HELD3),
         "heldout4": ("h4", _HELD4), "heldout5": ("h5", _HELD5), "heldout6": ("h6", _HELD6),
         "heldout7": ("h7", _HELD7), "heldout8": ("h8", _HELD8), "heldout9": ("h9", _HELD9),
         "heldout10": ("h10", _HELD10), "heldout11": ("h11", _HELD11),
         "heldout12": ("h12", _HELD12), "heldout13": ("h13", _HELD13),
         "heldout14": ("h14", _HELD14), "heldout15": ("h15", _HELD15),
         "heldout16": ("h16", _HELD16), "heldout17": ("h17", _HELD17), "heldout18": ("h18", _HELD18),
         "heldout19": ("h19", _HELD19), "heldout20": ("h20", _HELD20),
         "heldout21": ("h21", _HELD21), "heldout22": ("h22", _HELD22),
         "heldout23": ("h23", _HELD23),
         "heldout24": ("h24", _HELD24),
         "heldout25": ("h25", _HELD25),
         "heldout26": ("h26", _HELD26),
         "heldout27": ("h27", _HELD27),
         "heldout28": ("h28", _HELD28)}
SET_NAMES = tuple(_SETS)


def _mix(which: str) -> dict[str, Any]:
    if which not in _SETS:
        raise ValueError(f"unknown set {which!r}; choose {', '.join(SET_NAMES)}")
    return _SETS[which][1]


def set_specs(which: str, quick: bool = False) -> dict[str, StackSpec]:
    """The clip set ``which`` (one of :data:`SET_NAMES`). All sets cover the same
    situations; each held-out set differs from the others in every setting (sizes/fps,
    floors, bins, paints, arm and glove colours) and in seeds.

    >>> sets = [set_specs(w) for w in SET_NAMES]
    >>> all(len(x) >= 10 for x in sets)
    True
    >>> seeds = [{s.seed for s in x.values()} for x in sets]
    >>> all(not seeds[i] & seeds[j] for i in range(len(seeds)) for j in range(i + 1, len(seeds)))
    True
    """
    m = _mix(which)
    sz, fl, bn, pt, pal = m["sizes"], m["floors"], m["bins"], m["paints"], m["palette"]
    seed = m["seed0"]
    tag = _SETS[which][0]
    specs: dict[str, StackSpec] = {}

    def add(name: str, size: tuple[int, int, int], stage: Stage, cycles: list[Cycle], camera: Camera,
            lead: float = 1.0, tail: float = 1.5) -> None:
        w, h, fps = size
        stage.palette = list(pal)
        specs[f"{tag}_{name}"] = StackSpec(width=w, height=h, fps=fps, seed=seed + len(specs) * 17, cycles=cycles,
                                           stage=stage, camera=camera, lead_s=lead, tail_s=tail,
                                           name=f"{tag}_{name}")

    S = lambda k, **kw: Cycle("sheet", **kw)  # noqa: E731
    if quick:
        add("painted_fill", sz[0], Stage(fl[0], bn[0], "painted", pt[0], sheet_fill=0.96, initial=1),
            [S(0), S(0, gap_s=0.8), Cycle("touch", gap_s=0.8), S(0, gap_s=0.6)], Camera(noise=2))
        add("galv_hands", sz[1], Stage(fl[1], bn[1], "galvanised", sheet_fill=0.7, initial=1),
            [S(0, carrier="hands"), Cycle("nudge", gap_s=0.8), S(0, carrier="hands", linger_s=1.0)],
            Camera(noise=3, flicker=0.03))
        add("matte_fast", sz[2], Stage(fl[2], bn[2], "matte", identical=True, initial=2),
            [S(0, carrier="gripper", speed=1.6, gap_s=0.3) for _ in range(4)], Camera(noise=2, shake_px=1))
        return specs
    # the full set: ~10–11 clips, ~70–80 sheets
    add("painted_fill", sz[0], Stage(fl[0], bn[0], "painted", pt[0], sheet_fill=0.96, initial=1),
        [S(0, carrier="gripper"), S(0, gap_s=0.8), Cycle("touch", gap_s=0.8), S(0), S(0, gap_s=0.6),
         S(0, linger_s=1.2), Cycle("hover", pause_s=1.5), S(0)], Camera(noise=2, flicker=0.02))
    add("galv_small_hands", sz[1], Stage(fl[1], bn[1], "galvanised", sheet_fill=0.62, placement="loose", initial=1),
        [S(0, carrier="hands"), S(0, carrier="hands", linger_s=1.5), Cycle("nudge"), S(0, carrier="hands"),
         Cycle("touch"), S(0, carrier="gripper"), S(0, carrier="hands")], Camera(noise=2.5, drift=0.05))
    add("matte_identical", sz[2], Stage(fl[2], bn[1], "matte", identical=True, sheet_fill=0.85, initial=2),
        [S(0, gap_s=0.7) for _ in range(6)] + [Cycle("empty"), S(0)], Camera(noise=2, exposure_jumps=2))
    add("brushed_fast", sz[0], Stage(fl[1], bn[2], "brushed", sheet_fill=0.8, initial=1),
        [S(0, gap_s=0.25, speed=1.8, carrier="gripper") for _ in range(10)], Camera(noise=2))
    add("tread_harsh", sz[5], Stage(fl[0], bn[0], "tread", sheet_fill=0.75, placement="loose", initial=1),
        [S(0), Cycle("touch"), S(0), S(0, gap_s=0.5), Cycle("nudge"), S(0), S(0)],
        Camera(noise=6, flicker=0.06, band=0.04, exposure_jumps=2, auto_exposure=0.2, shake_px=2, codec="h264",
               crf=34, shadow_passes=1))
    add("idle_long", sz[2], Stage(fl[1], bn[0], "painted", pt[1], sheet_fill=0.8, initial=3),
        [S(0), Cycle("hover", pause_s=2.0, gap_s=25.0), S(0, gap_s=20.0)],
        Camera(noise=3, drift=0.12, drift_period_s=25, flicker=0.03, shadow_passes=2, exposure_jumps=2), lead=35.0)
    add("hands_all_sides", sz[0], Stage(fl[2], bn[2], "hot_rolled", sheet_fill=0.7, initial=1),
        [Cycle("touch", side="left"), S(0, side="right", carrier="hands"), Cycle("nudge", side="top"),
         S(0, side="bottom"), Cycle("touch", side="bottom"), S(0, side="top", carrier="hands"),
         Cycle("hover", side="right", carrier="hands", pause_s=1.2), S(0, side="left")],
        Camera(noise=2, shadow_passes=1))
    add("near_aligned", sz[0], Stage(fl[0], bn[1], "painted", pt[2], identical=True, sheet_fill=0.78, initial=1),
        [S(0, offset_px=(float(dx), float(dy)), angle_deg=0.0) for dx, dy in m["near"]], Camera(noise=2.5))
    add("linger_720p", sz[3], Stage(fl[1], bn[0], "galvanised", sheet_fill=0.95, initial=1),
        [S(0, linger_s=2.0, carrier="gripper"), S(0, linger_s=1.2), Cycle("hover", pause_s=1.5), S(0, linger_s=2.5),
         S(0)], Camera(noise=2, flicker=0.02, codec="h264", crf=28))
    add("mixed_1080p", sz[4], Stage(fl[2], bn[1], "brushed", sheet_fill=0.72, placement="loose", initial=1),
        [S(0), Cycle("touch"), S(0, carrier="hands"), S(0, gap_s=0.5)], Camera(noise=3, shake_px=1, shake_bursts=True))
    add("fast_hands_540p", sz[1], Stage(fl[0], bn[2], "painted", pt[1], sheet_fill=0.9, initial=1, identical=True),
        [S(0, gap_s=0.4, speed=1.6, carrier="hands") for _ in range(6)] + [Cycle("touch", gap_s=0.4, speed=1.6)],
        Camera(noise=2, flicker=0.04, mains_hz=120.0))
    if which not in ("heldout", "heldout2"):
        # (every set since heldout3; heldout18 lacked them until session 15, a slip of the list of
        # sets written out here: session 15's last run looked at its other 11 clips only)
        # issue 12's failure categories on held-out data, reproduced with this set's own
        # settings and seeds: a fast-fed first sheet on an empty bin (dark paint), hands that
        # touch/straighten tread plate under a harsh camera, hands from every side over smooth
        # sheets, near-aligned identical matte sheets (added to the tuning set to fix them there,
        # and to the fresh heldout3 to judge the fix; heldout and heldout2 stay as they were)
        add("dark_first_fast", sz[3], Stage(fl[2], bn[0], "painted", m["dark_paint"], sheet_fill=0.96, initial=0),
            [S(0, gap_s=0.3, speed=1.7) for _ in range(5)] + [Cycle("touch", gap_s=0.4, speed=1.7)],
            Camera(noise=2.5, flicker=0.03, codec="h264", crf=27))
        add("tread_touches", sz[5], Stage(fl[1], bn[1], "tread", sheet_fill=0.7, initial=1),
            [Cycle("touch"), S(0), Cycle("touch", side="left"), Cycle("nudge"), S(0, carrier="hands"),
             Cycle("touch", side="top"), S(0)],
            Camera(noise=5, flicker=0.05, band=0.04, exposure_jumps=1, auto_exposure=0.15, shake_px=2, codec="h264",
                   crf=32))
        add("sides_smooth", sz[1], Stage(fl[2], bn[0], "galvanised", sheet_fill=0.8, initial=1),
            [S(0, side="top", carrier="hands"), Cycle("nudge", side="left"), S(0, side="bottom"),
             Cycle("touch", side="right"), S(0, side="left", carrier="hands"),
             Cycle("hover", side="top", carrier="hands", pause_s=1.0), S(0, side="right")],
            Camera(noise=2.5, shadow_passes=1))
        add("near_matte", sz[2], Stage(fl[0], bn[2], "matte", identical=True, sheet_fill=0.9, initial=1),
            [S(0, offset_px=(float(dx), float(dy)), angle_deg=0.0) for dx, dy in m["near"][:6]] + [Cycle("nudge")],
            Camera(noise=2))
    if which == "tune" and not quick:
        # a category seen on heldout5 (session 4), reproduced with tuning settings and seeds:
        # identical near-aligned sheets painted the colour of the floor, in a black bin (the
        # carried sheet shows almost nowhere; heldout6 was fixed before this clip was added)
        add("near_floor_paint", sz[1], Stage(fl[0], bn[1], "painted", FLOORS[fl[0]][0], identical=True,
                                             sheet_fill=0.78, initial=1),
            [S(0, offset_px=(float(dx), float(dy)), angle_deg=0.0) for dx, dy in m["near"]], Camera(noise=2.5))
    return specs


def train_specs(n: int = 48, seed0: int = 40000, hard: bool = False) -> dict[str, StackSpec]:
    """A TRAINING corpus for fitting the cue model: ``n`` clips, each drawn at random (its own
    seed ``seed0 + i``) — random floor and bin colours (``rand:`` names, none of the named
    held-out ones), finishes, paints, sheet sizes, arm colours, sizes 640–1920 px at 10–30
    frames/s, 6–9 cycles of every kind with random gaps, speeds, lingers, sides and carriers,
    and random camera faults. Seeds far from every named set's.

    ``hard``: the same draws weighted towards what the counter finds hardest (issue 12's
    independent clips): smooth identical sheets, most of them laid 1–3 px off the last one,
    a third painted close to the floor's colour, more lingering arms and fast feeding. The
    default corpus is unchanged by it (same draws, same clips).

    >>> specs = train_specs(4)
    >>> len(specs), all(s.name.startswith("r_") for s in specs.values())
    (4, True)
    >>> specs == train_specs(4)
    True
    """
    out: dict[str, StackSpec] = {}
    for i in range(n):
        r = np.random.default_rng(seed0 + i)
        u = lambda a, b: round(float(r.uniform(a, b)), 3)  # noqa: E731
        w = int(r.choice([640, 720, 800, 960, 1024, 1280, 1280, 1600, 1920]))
        h = int(round(w * (9 / 16 if r.random() < 0.6 else 3 / 4) / 2)) * 2
        fps = int(r.integers(10, 31))
        floor = f"rand:{u(0.08, 0.8)},{u(0.08, 0.8)},{u(0.08, 0.8)},{u(0.004, 0.05)},{u(0.0, 0.06)}"
        bin_ = "rand:" if r.random() < 0.12 else f"rand:{u(0.05, 0.9)},{u(0.05, 0.9)},{u(0.05, 0.9)}"
        finish = str(r.choice(SMOOTH_FINISHES + TEXTURED_FINISHES))
        if hard and r.random() < 0.75:
            finish = str(r.choice(SMOOTH_FINISHES))
        paint = (u(0.05, 0.9), u(0.05, 0.9), u(0.05, 0.9))
        if hard and r.random() < 0.33:      # painted close to the floor's colour
            fb = [float(v) for v in floor[5:].split(",")[:3]]
            finish, paint = "painted", tuple(round(min(0.95, max(0.03, v + float(r.uniform(-0.06, 0.06)))), 3)
                                             for v in fb)
        stage = Stage(floor=floor, bin=bin_, finish=finish, paint=paint,  # type: ignore[arg-type]
                      bin_frac=u(0.62, 0.8), sheet_fill=u(0.55, 0.97), aspect=u(1.2, 1.7),
                      initial=int(r.integers(0, 4)), identical=bool(r.random() < (0.7 if hard else 0.3)),
                      placement=str(r.choice(["near", "loose"])),
                      palette=[tuple(int(v) for v in r.integers(0, 256, 3)) for _ in range(5)],  # type: ignore[misc]
                      lamp=(u(0.2, 0.8), u(0.2, 0.8)))
        cycles = []
        for k in range(int(r.integers(6, 10))):
            kind = str(r.choice(["sheet"] * 13 + ["touch"] * 3 + ["nudge"] * 2 + ["hover"] * 1 + ["empty"] * 1))
            fast = r.random() < (0.3 if hard else 0.2)
            near = kind == "sheet" and r.random() < (0.6 if hard else 0.2)
            cycles.append(Cycle(kind, gap_s=u(0.25, 0.6) if fast else u(0.5, 2.0),
                                carrier=None if kind in ("touch", "nudge", "empty") else str(r.choice(CARRIERS)),
                                side=str(r.choice(SIDES)), speed=u(1.4, 1.9) if fast else u(0.8, 1.3),
                                linger_s=(u(0.5, 2.5) if kind == "sheet" and r.random() < (0.35 if hard else 0.25)
                                          else 0.0),
                                pause_s=u(0.8, 2.0) if kind == "hover" else 0.0,
                                offset_px=(float(r.integers(-3, 4)), float(r.integers(-3, 4))) if near else None,
                                angle_deg=0.0 if near else None))
        h264 = r.random() < 0.5
        cam = Camera(noise=u(1.5, 6.0), flicker=u(0.0, 0.06) if r.random() < 0.5 else 0.0,
                     mains_hz=float(r.choice([100.0, 120.0])), band=u(0.0, 0.04) if r.random() < 0.3 else 0.0,
                     drift=u(0.0, 0.1) if r.random() < 0.4 else 0.0, exposure_jumps=int(r.integers(0, 3)),
                     auto_exposure=u(0.0, 0.2) if r.random() < 0.4 else 0.0,
                     shake_px=int(r.integers(0, 3)) if r.random() < 0.4 else 0, shake_bursts=bool(r.random() < 0.3),
                     shadow_passes=int(r.integers(0, 3)) if r.random() < 0.4 else 0,
                     codec="h264" if h264 else "mp4v", crf=int(r.integers(23, 35)))
        name = f"r_{i:03d}"
        out[name] = StackSpec(width=w, height=h, fps=float(fps), seed=seed0 + i, cycles=cycles, stage=stage,
                              camera=cam, lead_s=1.0, tail_s=1.5, name=name)
    return out


def render_set(which: str, out_dir: str | Path, quick: bool = False, rebuild: bool = False) -> list[StackTruth]:
    """Render set ``which`` into ``out_dir`` (``NAME.mp4`` + ``NAME.json``); clips whose spec is
    unchanged are reused."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = []
    for name, spec in set_specs(which, quick).items():
        res.append(cached_clip(spec, out, rebuild))
    return res


def cached_clip(spec: StackSpec, folder: Path, rebuild: bool = False) -> StackTruth:
    mp4, js = folder / f"{spec.name}.mp4", folder / f"{spec.name}.json"
    want = spec.to_dict()
    if not rebuild and mp4.exists() and js.exists():
        try:
            t = StackTruth.load(js)
            if t.spec == want:
                t.path = str(mp4)
                return t
        except Exception:  # a damaged cache entry is rendered again
            pass
    t = render_clip(spec, mp4)
    t.save(js)
    return t
