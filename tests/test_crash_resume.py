"""kill -9 of the running counting process mid-session, restart, resume.

The process is ``python -m core live`` — the same CountingWorker the app caches — counting a
generated clip in real time into a real SQLite database and session folder. It is SIGKILLed
after some sheets are committed; a fresh process resumes the open session from the stored
source position. At the end: the exact count, one capture (two files) per sheet, no frame
counted twice, no temp files.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.platform.storage import CaptureRow, CountEventRow, Database, SessionRow

from live_clips import sheets_clip, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _live(env, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "core", "live", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _count(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.coalesce(func.max(SessionRow.count), 0))) or 0


@pytest.mark.parametrize("kill_after", [1, 3])
def test_kill_9_mid_session_then_resume(data_dir, tmp_path, kill_after):
    clip = tmp_path / "clip.mp4"
    truth = sheets_clip(clip, n_sheets=5, hand=True, gap_s=0.8, tail_s=2.0, fps=10)
    env = dict(os.environ, MSM_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    env.pop("DATABASE_URL", None)
    db = Database()

    p = _live(env, "--source", str(clip), "--session", "Crash ü/..", "--target", "5", "--no-loop")
    try:
        wait_for(lambda: _count(db) >= kill_after or p.poll() is not None, 90, what=f"{kill_after} counts")
        assert p.poll() is None, p.stderr.read()
        os.kill(p.pid, signal.SIGKILL)              # no cleanup, no finally: a power cut
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == -signal.SIGKILL
    before = _count(db)
    assert kill_after <= before < truth.expected_count, "the kill must land mid-session"
    with db.session() as s:
        sess = s.scalars(select(SessionRow)).one()
        assert sess.status == "active" and sess.source_position > 0

    # restart: the open session is found and resumed at its stored position
    p2 = _live(env, "--no-loop", "--until-ended", "--finish")
    out, err = p2.communicate(timeout=120)
    assert p2.returncode == 0, err[-3000:]
    final = json.loads(out.strip().splitlines()[-1])
    assert final["count"] == truth.expected_count == 5, (final, err[-2000:])
    assert final["finish_alert"] == "ok"

    with db.session() as s:
        sess = s.scalars(select(SessionRow)).one()
        assert sess.count == 5 and sess.status == "finished"
        frames = [e.frame for e in s.scalars(select(CountEventRow).where(CountEventRow.kind == "auto"))]
        caps = s.scalars(select(CaptureRow)).all()
    assert len(frames) == len(set(frames)) == 5, frames
    assert sorted(c.index for c in caps) == [1, 2, 3, 4, 5]
    folder = data_dir / "media" / "sessions" / sess.folder
    for c in caps:
        assert (data_dir / "media" / "sessions" / c.path).stat().st_size > 0
        assert (data_dir / "media" / "sessions" / c.annotated_path).stat().st_size > 0
    assert not list(folder.glob(".*.tmp")), "a temp file survived"
    # sheet captures: exactly the committed ones (no orphan from the killed process left unused)
    assert len(list(folder.glob("sheet_*.jpg"))) == 10
    db.dispose()
