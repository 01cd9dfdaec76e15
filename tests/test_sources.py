"""Frame sources: files, looping, flags, fps limit, clear errors, reconnect with backoff.

The RTSP server tests (a real GStreamer server) belong to the live-monitoring tests; here
the unreachable-stream path uses a closed local port (real FFmpeg, no mock), and the
backoff timings are injected so reconnects take milliseconds.
"""
from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from core.live.sources import Backoff, FrameFlag, SourceError, SourceStatus, black_or_frozen, open_source, probe_video
from core.synthetic.clips import ClipSpec, Event, Nuisances, render_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    spec = ClipSpec(width=160, height=120, fps=10, seed=2, events=[Event("sheet")], lead_in_s=0.5, tail_s=0.5,
                    nuisances=Nuisances(black_frames=1, frozen_runs=0))
    return render_clip(spec, d / "c.mp4")


@pytest.fixture(scope="module")
def mp4v_clip(tmp_path_factory):
    """MJPG (intra-only) keeps repeated frames bit-exact, like a stalled camera's repeats."""
    d = tmp_path_factory.mktemp("src4")
    spec = ClipSpec(width=160, height=120, fps=10, seed=3, events=[Event("hand")], lead_in_s=0.5, tail_s=0.3,
                    codec="mjpg", nuisances=Nuisances(frozen_runs=2, noise_sigma=3))
    return render_clip(spec, d / "c4.avi")


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_probe_ok(clip):
    info = probe_video(clip.path)
    assert (info.width, info.height, info.fps) == (160, 120, 10.0)
    assert info.frame_count == clip.frames and not info.is_stream
    assert abs(info.duration_s - clip.frames / 10.0) < 1e-6


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "folder", "truncated"])
def test_probe_bad_input_one_clear_message(tmp_path, clip, kind):
    p = tmp_path / "bad.mp4"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("this is not a video\n" * 50)
    elif kind == "folder":
        p.mkdir()
    elif kind == "truncated":   # a real MP4 header (faststart: moov first) and no frame data
        data = open(clip.path, "rb").read()
        p.write_bytes(data[:1200])
    with pytest.raises(SourceError) as e:
        probe_video(p)
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg
    assert {"missing": "not found", "empty": "0 bytes", "text": "not a readable video", "folder": "folder",
            "truncated": "video"}[kind] in msg
    with pytest.raises(SourceError):
        open_source(p)


def test_unreachable_stream_is_fast_and_clear():
    url = f"rtsp://127.0.0.1:{_closed_port()}/x"
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="cannot reach the camera stream"):
        probe_video(url, timeout_s=2)
    assert time.monotonic() - t0 < 5


def test_password_is_redacted():
    with pytest.raises(SourceError) as e:
        probe_video(f"rtsp://admin:secret@127.0.0.1:{_closed_port()}/x", timeout_s=1)
    assert "secret" not in str(e.value) and "admin:***@" in str(e.value)


def test_iterate_file_flags_and_status(clip):
    src = open_source(clip.path)
    assert src.status == SourceStatus.CONNECTING
    frames = list(src)
    assert len(frames) == clip.frames
    assert [f.index for f in frames] == list(range(clip.frames))
    assert frames[3].t == pytest.approx(0.3)
    assert all(f.wall_time.tzinfo is not None for f in frames)
    assert [f.index for f in frames if f.is_black] == clip.black_frames
    assert src.status == SourceStatus.ENDED


def test_frozen_flag_on_bit_identical_repeats(mp4v_clip):
    frames = list(open_source(mp4v_clip.path))
    frozen = [f.index for f in frames if f.is_frozen]
    assert frozen == mp4v_clip.frozen_frames and frozen
    img = frames[0].image
    flags, sample = black_or_frozen(img, None)
    assert flags == FrameFlag.NONE
    flags2, _ = black_or_frozen(img.copy(), sample)
    assert FrameFlag.FROZEN in flags2
    assert FrameFlag.BLACK in black_or_frozen(np.zeros_like(img), None)[0]


def test_loop_and_fps_limit(clip):
    src = open_source(clip.path, loop=True)
    got = []
    for f in src:
        got.append(f)
        if len(got) == clip.frames * 2 + 3:
            src.close()
    ts = [f.t for f in got]
    assert all(b > a for a, b in zip(ts, ts[1:])), "time keeps increasing across loops"
    assert [f.index for f in got] == list(range(len(got)))
    assert src.status == SourceStatus.CLOSED
    limited = list(open_source(clip.path, fps_limit=5))
    assert abs(len(limited) - clip.frames / 2) <= 1


def test_realtime_pacing(clip):
    t0 = time.monotonic()
    n = 0
    for f in open_source(clip.path, realtime=True):
        n += 1
        if n == 6:
            break
    assert time.monotonic() - t0 >= 0.45     # 6 frames at 10 fps ≈ 0.5 s


def test_stream_reconnects_with_capped_backoff():
    url = f"rtsp://127.0.0.1:{_closed_port()}/x"
    delays: list[float] = []
    seen: list[str] = []
    src = open_source(url, backoff=Backoff(0.01, 2.0, 0.04), max_reconnects=5, open_timeout_s=1,
                      sleep=lambda d: (delays.append(d), seen.append(src.status.value)))
    assert list(src) == []
    assert delays == [0.01, 0.02, 0.04, 0.04, 0.04]
    assert set(seen) <= {"connecting", "reconnecting"}
    assert src.status == SourceStatus.ERROR and src.reconnects == 5


def test_status_readable_from_another_thread_and_stall(clip):
    now = [100.0]
    src = open_source(clip.path, clock=lambda: now[0], stall_after_s=3.0)
    it = iter(src)
    next(it)
    statuses = []
    th = threading.Thread(target=lambda: statuses.append(src.status))
    th.start()
    th.join()
    assert statuses == [SourceStatus.LIVE]
    now[0] += 10.0                      # no frame for 10 s
    assert src.status == SourceStatus.STALLED
    next(it)
    assert src.status == SourceStatus.LIVE
    src.close()
    assert src.status == SourceStatus.CLOSED


def test_backoff_cap():
    b = Backoff(0.5, 2.0, 4.0)
    assert [b.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_analysis_rate_skips_frames_without_converting_and_keeps_the_numbering(clip):
    """Issue 12 throughput: ``analysis_fps`` / ``want`` yield only the frames to analyse,
    numbered and timed as in the file; the others are grabbed, never converted (all frames
    are still read: ``frames_read``)."""
    import cv2
    full = list(open_source(clip.path))
    half = open_source(clip.path, analysis_fps=5)          # the clip is 10 fps
    got = list(half)
    assert [f.index for f in got] == list(range(0, clip.frames, 2))
    assert all(abs(f.t - f.index / clip.fps) < 1e-9 for f in got)
    assert half.frames_read == len(full) == clip.frames
    by_index = {f.index: f.image for f in full}
    assert all(np.array_equal(f.image, by_index[f.index]) for f in got), "the analysed frames are the file's own"
    # want(t): the consumer chooses per frame (here: only the first second)
    first = list(open_source(clip.path, want=lambda t: t < 1.0))
    assert [f.index for f in first] == [i for i in range(clip.frames) if i / clip.fps < 1.0]
    assert cv2.getNumThreads() >= 1


def test_yuv_source_gives_the_same_frames_numbers_and_times_as_opencv(clip, monkeypatch):
    """Issue 12 throughput: ``yuv=True`` (how ``core count`` reads a file) decodes with PyAV
    and hands out the decoded planes; the numbering, times, ``want`` and ``frames_read`` are
    those of the OpenCV reader, and a picture converted on demand is OpenCV's, pixel for pixel
    (every picture deblocked, as OpenCV decodes it: see the next tests for the default)."""
    import core.live.sources as S
    from core.counting.frames import YuvFrame, pixels
    monkeypatch.setattr(S, "SKIP_NONREF_DEBLOCK", False)
    ref = list(open_source(clip.path))
    src = open_source(clip.path, yuv=True)
    got = list(src)
    assert all(isinstance(f.image, YuvFrame) for f in got)
    assert [(f.index, f.t) for f in got] == [(f.index, f.t) for f in ref]
    assert src.frames_read == len(ref) and src.status == SourceStatus.ENDED
    assert all(np.array_equal(pixels(a.image), b.image) for a, b in zip(got, ref))
    first = list(open_source(clip.path, yuv=True, want=lambda t: t < 1.0))
    assert [f.index for f in first] == [i for i in range(clip.frames) if i / clip.fps < 1.0]
    assert [f.index for f in open_source(clip.path, yuv=True, analysis_fps=5)] == list(range(0, clip.frames, 2))


@pytest.mark.parametrize("ext,bframes", [("mkv", "3"), ("ts", "2"), ("mp4", "0")])
def test_the_key_frame_probe_leaves_every_picture_as_a_full_probe_gives_it(tmp_path, ext, bframes, monkeypatch):
    """Opening a file for ``core count``, PyAV's stream probe decodes key frames only (it would
    decode ~7 pictures to guess the decoder's delay, then they are decoded again). Its options
    reach the probe's decoder alone: H.264 with and without B-frames, in containers that carry
    the delay (mp4) and ones that do not (mkv, ts), gives the same pictures in the same order
    as a plain open (every picture deblocked here, as a plain open does)."""
    import core.live.sources as S
    monkeypatch.setattr(S, "SKIP_NONREF_DEBLOCK", False)
    got, ref, _types = _probe_and_plain(tmp_path, ext, bframes)
    assert len(got) == len(ref) == 30
    assert all(np.array_equal(a, b) for a, b in zip(got, ref))


def test_pictures_nothing_refers_to_are_decoded_without_deblocking_and_no_other(tmp_path):
    """``SKIP_NONREF_DEBLOCK`` (the default): H.264 pictures no other picture is predicted from
    skip the deblocking filter (~10 % of decoding a 720p bench clip). Key and P pictures, and
    so everything predicted from them, are exactly a plain decoder's; the pictures that differ
    are B pictures, and by little."""
    got, ref, types = _probe_and_plain(tmp_path, "mkv", "3")
    diff = [float(np.abs(a.astype(np.int16) - b).mean()) for a, b in zip(got, ref)]
    assert all(d == 0.0 for d, t in zip(diff, types) if t != "B")
    assert any(d > 0.0 for d in diff), "no picture decoded without its deblocking: the option did not reach the decoder"
    assert max(diff) < 2.0


def _probe_and_plain(tmp_path, ext: str, bframes: str) -> tuple[list, list, list]:
    """A 30-picture H.264 file: its pictures as ``core count`` opens it, as a plain PyAV open
    decodes them, and their types (I, P, B)."""
    import av

    from core.counting.frames import pixels
    from core.live.sources import _av_open, _yuv_frames
    rng = np.random.default_rng(7)
    base = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    path = str(tmp_path / f"b.{ext}")
    out = av.open(path, "w")
    st = out.add_stream("libx264", rate=10)
    st.width, st.height, st.pix_fmt, st.options = 128, 96, "yuv420p", {"bf": bframes}
    for i in range(30):
        for pkt in st.encode(av.VideoFrame.from_ndarray(np.roll(base, 3 * i, axis=1), format="bgr24")):
            out.mux(pkt)
    for pkt in st.encode():
        out.mux(pkt)
    out.close()
    with av.open(path) as ref_c:
        plain = list(ref_c.decode(ref_c.streams.video[0]))
        ref = [f.to_ndarray(format="bgr24") for f in plain]
        types = [av.video.frame.PictureType(int(f.pict_type)).name for f in plain]
    opened = _av_open(path)
    assert opened is not None and opened[3].fps == 10.0
    got = [pixels(make()) for make in _yuv_frames(*opened[:3])]
    return got, ref, types


@pytest.mark.parametrize("width,height", [(640, 360), (960, 540)])
def test_yuv_small_images_are_the_engines_reduction_of_the_converted_frame(tmp_path, width, height):
    """The 160 px green and 80 px red−blue images made from the planes match the engine's
    reduction of the converted BGR frame (coloured arms, floors, bins, tread plate of the
    stacking renderer under a harsh camera), also where the engine's stride is odd (960 px:
    every 3rd pixel, between two chroma samples) and where a saturated arm's blue clips at 0:
    within a grey level or two."""
    from core.counting.engine import _chroma_small, _gray_small
    from core.counting.frames import pixels
    from core.synthetic.stacking import Camera, Cycle, StackSpec, Stage, render_clip
    spec = StackSpec(width=width, height=height, fps=10, seed=5, cycles=[Cycle("sheet"), Cycle("touch")],
                     stage=Stage(finish="tread"), camera=Camera(noise=5, codec="h264", crf=32))
    truth = render_clip(spec, tmp_path / "s.mp4")
    g_err, c_err = [], []
    size, csize = (160, 90), (80, 45)
    for f in open_source(truth.path, yuv=True):
        bgr = pixels(f.image)
        g_err.append(np.abs(f.image.green_small(size).astype(float) - _gray_small(bgr, size)).ravel())
        c_err.append(np.abs(f.image.chroma_small(csize) - _chroma_small(bgr, csize)).ravel())
    g, c = np.concatenate(g_err), np.concatenate(c_err)
    assert g.mean() < 1.0 and np.percentile(g, 99.9) <= 3, (g.mean(), g.max())
    assert np.sqrt((c ** 2).mean()) < 1.0 and np.percentile(c, 99) < 2.5, (np.sqrt((c ** 2).mean()), c.max())


@pytest.mark.parametrize("width,height", [(1280, 720), (960, 540), (1000, 562), (1279, 720)])
def test_the_red_blue_image_takes_the_grey_images_samples_bit_for_bit(width, height):
    """After the 160 px grey image, the 80 px red−blue one reads every 2nd of its Y/U/V samples
    (twice the stride: the same pixels) instead of gathering them from the planes again: the
    same figures as a frame that gathers them afresh, at even and odd strides; at a width where
    the stride is not twice the grey one's (1279 px: 7 vs 3), it gathers them as before."""
    from core.counting.frames import YuvFrame
    rng = np.random.default_rng(width)
    planes = (rng.integers(16, 236, (height, width), dtype=np.uint8),
              rng.integers(16, 241, ((height + 1) // 2, (width + 1) // 2), dtype=np.uint8),
              rng.integers(16, 241, ((height + 1) // 2, (width + 1) // 2), dtype=np.uint8))

    def frame():
        return YuvFrame(*planes, to_bgr=lambda: np.zeros((height, width, 3), np.uint8))
    f = frame()
    g = f.green_small((160, 90))
    assert np.array_equal(g, frame().green_small((160, 90)))
    assert np.array_equal(f.chroma_small((80, 45)), frame().chroma_small((80, 45)))
    reused = width // 160 == 2 * (width // 320)
    assert reused == (width != 1279)
    assert f._grid is not None and f._grid[0] == (width // 320 if reused else width // 160)


def test_yuv_source_reads_other_layouts_and_unopenable_files_as_bgr(mp4v_clip, monkeypatch):
    """Full-range 4:2:2 JPEG pictures (an MJPG file) come as converted arrays; a file PyAV
    cannot open is read by OpenCV. Either way the frames are the OpenCV reader's."""
    import av
    ref = list(open_source(mp4v_clip.path))
    got = list(open_source(mp4v_clip.path, yuv=True))
    assert all(isinstance(f.image, np.ndarray) for f in got) and len(got) == len(ref)
    assert [f.index for f in got] == [f.index for f in ref]
    assert max(np.abs(a.image.astype(int) - b.image).max() for a, b in zip(got, ref)) <= 3

    def no_open(*a, **k):
        raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
    monkeypatch.setattr(av, "open", no_open)
    fb = list(open_source(mp4v_clip.path, yuv=True))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(fb, ref)) and len(fb) == len(ref)


def test_decisions_at_half_size_read_the_planes_and_convert_no_frame(tmp_path, monkeypatch):
    """Issue 12 throughput: at 720p a decision works at half size, which the green of the
    planes gives directly (``YuvFrame.green_area``: within a grey level of the converted
    frame's green, area-reduced, also for a box at odd coordinates). ``core count`` keeps no
    images, so a 720p file is counted without converting a single frame, with the decisions
    (frames and verdicts) of the engine fed OpenCV's converted frames. A counted area at odd
    coordinates (off the chroma grid) is read from the converted frame."""
    import cv2

    from core.counting.engine import CountingEngine
    from core.counting.frames import YuvFrame, pixels
    from core.live.count import count_video
    from core.platform.settings import CountingSettings
    from core.synthetic.stacking import Camera, Cycle, StackSpec, Stage, render_clip
    spec = StackSpec(width=1280, height=720, fps=10, seed=8, cycles=[Cycle("sheet"), Cycle("touch"), Cycle("sheet")],
                     stage=Stage(finish="tread"), camera=Camera(noise=4, codec="h264", crf=30))
    truth = render_clip(spec, tmp_path / "s.mp4")
    errs = []
    for f in list(open_source(truth.path, yuv=True))[::4]:
        bgr = pixels(f.image)
        for (x1, y1, x2, y2) in ((0, 0, 1280, 720), (2, 4, 1202, 684)):
            size = ((x2 - x1) // 2, (y2 - y1) // 2)
            ref = cv2.resize(bgr[y1:y2, x1:x2, 1], size, interpolation=cv2.INTER_AREA).astype(float)
            errs.append(np.abs(f.image.green_area((x1, y1, x2, y2), size) - ref).ravel())
    e = np.concatenate(errs)
    assert e.mean() < 1.0 and np.percentile(e, 99.9) <= 3, (e.mean(), e.max())
    calls = []
    real = YuvFrame.bgr

    def counting_bgr(self):
        calls.append(1)
        return real(self)
    monkeypatch.setattr(YuvFrame, "bgr", counting_bgr)
    r = count_video(truth.path)
    assert calls == []
    eng = CountingEngine(CountingSettings())
    ref_decisions = []
    for fr in open_source(truth.path):
        eng.update(fr.image, fr.index, fr.t)
    ref_decisions = [(d.frame, d.accept) for d in eng.decisions]
    assert r.count == truth.expected_count == 2
    assert [e.frame for e in r.events] == [f for f, ok in ref_decisions if ok]
    from core.counting.engine import ModelFreeVerifier
    frame = next(iter(open_source(truth.path, yuv=True))).image
    ModelFreeVerifier()._prep(frame, [0, 0, 1280, 720], 0.5)
    assert calls == []
    ModelFreeVerifier()._prep(frame, [3, 5, 1203, 685], 0.5)
    assert calls == [1]
