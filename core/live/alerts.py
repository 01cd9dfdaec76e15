"""Alert sounds: the over-target alert and the finish sounds A (under) and B (over).

The project makes its own default sounds — short synthesised WAV tones written under
``data/sounds/`` on first use — so nothing has to be downloaded or licensed. Custom sounds
uploaded on the Settings page (``settings.alerts.*``: a file under ``data/sounds``) take
precedence when the file exists.

Example:
    >>> from core.platform.paths import Paths
    >>> from core.platform.settings import Settings
    >>> p = sound_path("over_target", Settings(), Paths.from_env())
    >>> p.suffix
    '.wav'
    >>> alert_kind_for_finish(98, 100), alert_kind_for_finish(101, 100), alert_kind_for_finish(100, 100)
    ('finish_under', 'finish_over', None)
"""
from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from core.platform.log import get
from core.platform.paths import Paths, atomic_write_bytes, safe_join
from core.platform.settings import Settings

log = get("alerts")

RATE = 22050
KINDS = ("over_target", "finish_under", "finish_over")
_SETTING = {"over_target": "over_target_sound", "finish_under": "finish_under_sound",
            "finish_over": "finish_over_sound"}


@dataclass(frozen=True)
class Tone:
    """A sequence of (frequency Hz, seconds) notes; 0 Hz is a rest."""
    notes: tuple[tuple[float, float], ...]
    volume: float = 0.6


# Distinct on a noisy shop floor: a fast high triple beep for "over target", a falling
# two-note for "under" (sound A), a rising three-note for "over" (sound B).
DEFAULT_TONES: dict[str, Tone] = {
    "over_target": Tone(((1760, 0.12), (0, 0.06), (1760, 0.12), (0, 0.06), (1760, 0.12))),
    "finish_under": Tone(((880, 0.30), (0, 0.05), (587, 0.45))),
    "finish_over": Tone(((659, 0.18), (0, 0.04), (880, 0.18), (0, 0.04), (1319, 0.40))),
}


def synth_wav(tone: Tone, rate: int = RATE) -> bytes:
    """16-bit mono WAV bytes of ``tone`` (sine notes with 10 ms fades, so no clicks)."""
    parts = []
    fade = int(0.01 * rate)
    for freq, secs in tone.notes:
        n = int(secs * rate)
        if freq <= 0:
            parts.append(np.zeros(n))
            continue
        t = np.arange(n) / rate
        x = np.sin(2 * np.pi * freq * t) + 0.25 * np.sin(4 * np.pi * freq * t)
        env = np.ones(n)
        k = min(fade, n // 2)
        if k:
            env[:k] = np.linspace(0, 1, k)
            env[-k:] = np.linspace(1, 0, k)
        parts.append(x * env / 1.25)
    pcm = (np.concatenate(parts) * tone.volume * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def default_sound(kind: str, paths: Paths) -> Path:
    """The bundled default for ``kind``, written on first use."""
    if kind not in DEFAULT_TONES:
        raise ValueError(f"unknown alert: {kind}")
    p = paths.sounds / f"default_{kind}.wav"
    if not p.exists():
        atomic_write_bytes(p, synth_wav(DEFAULT_TONES[kind]))
    return p


def sound_path(kind: str, settings: Settings, paths: Paths) -> Path:
    """The custom sound from Settings when its file exists, else the default."""
    custom = getattr(settings.alerts, _SETTING[kind], "") if kind in _SETTING else ""
    if custom:
        try:
            p = Path(custom)
            p = p if p.is_absolute() else safe_join(paths.sounds, custom)
            if p.is_file() and p.stat().st_size > 0:
                return p
            log.warning("custom %s sound %s missing: using the default", kind, custom)
        except ValueError:
            log.warning("custom %s sound %s is outside data/sounds: using the default", kind, custom)
    return default_sound(kind, paths)


def mime_type(path: Path) -> str:
    return {".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".wav": "audio/wav",
            ".m4a": "audio/mp4"}.get(path.suffix.lower(), "audio/wav")


def alert_kind_for_finish(count: int, target: int) -> Optional[str]:
    """Sound A (``finish_under``) or B (``finish_over``) — none when the count is right.
    The rule itself is :func:`core.live.sessions.finish_alert_for` (one place)."""
    from core.live.sessions import finish_alert_for
    kind = finish_alert_for(count, target)
    return None if kind == "ok" else f"finish_{kind}"
