"""``pages.measure_view.show_measure`` (the Defect Analysis page's [Measure Dimension]) run
by Streamlit's AppTest on a real database and a rendered capture: the rectangle drawn,
"L × W mm" shown, parallax from sheet number × thickness, a MeasurementRow and a line in
the session log stored; uncalibrated → pixels and a hint; no sheet → one clear warning."""
from __future__ import annotations

import pytest


def _script(image_kind: str) -> None:   # runs inside AppTest (its own module namespace)
    import numpy as np

    from core.platform.paths import Paths
    from core.platform.storage import CaptureRow, Database
    from core.synthetic.stills import Camera, SheetScene, render
    from pages.common import AppContext
    from pages.measure_view import show_measure

    db = Database()
    c = AppContext(db=db, paths=Paths.from_env(), settings=db.load_settings(), lang="en", tz="Asia/Jakarta")
    with db.session() as s:
        row = s.get(CaptureRow, 1)
    if image_kind == "sheet":
        img = render(SheetScene(length_mm=2000, width_mm=1000, angle_deg=12, stack_height_mm=120, thickness_mm=1.5),
                     Camera(640, 480, 250, 2000), seed=3).image
    else:
        img = np.full((240, 320, 3), 90, np.uint8)
    show_measure(c, row, img)


@pytest.fixture
def capture(db):
    from core.platform.storage import CaptureRow, SessionRow
    with db.session() as s:
        s.add(SessionRow(id="batch-m-1", name="Batch-M", target=100, folder="x"))
        s.flush()
        # sheet #80 × 1.5 mm = a 120 mm stack
        s.add(CaptureRow(id=1, session_id="batch-m-1", index=80, path="x/080.jpg"))
    return db


def _run(kind: str):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_function(_script, args=(kind,), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_measure_view_calibrated_with_parallax(capture):
    db = capture
    s = db.load_settings()
    s.calibration.mm_per_px, s.calibration.camera_height_mm, s.calibration.sheet_thickness_mm = 8.0, 2000.0, 1.5
    db.save_settings(s, who="test")
    at = _run("sheet")
    ok = [x.value for x in at.success]
    assert ok and ok[0].startswith("Length × width:") and ok[0].endswith("mm"), ok
    size = ok[0].split(":")[1].replace("mm", "").replace(",", "").split("×")
    length, width = (float(v) for v in size)
    assert abs(length - 2000) / 2000 < 0.005 and abs(width - 1000) / 1000 < 0.005
    assert any("parallax compensated for a stack of 120.0 mm" in cap.value for cap in at.caption)
    assert len(at.get("image")) == 1             # the photo with the rectangle drawn
    from core.platform.storage import MeasurementRow, UserLogRow
    with db.session() as ss:
        rows = list(ss.query(MeasurementRow))
        logs = [x.message for x in ss.query(UserLogRow).filter_by(session_id="batch-m-1")]
    assert len(rows) == 1 and rows[0].parallax_compensated and rows[0].stack_height_mm == pytest.approx(120)
    assert any("Sheet #80 measured" in m for m in logs)


def test_measure_view_uncalibrated_and_no_sheet(capture):
    at = _run("sheet")
    assert any("Not calibrated" in w.value and "px" in w.value for w in at.warning)
    at = _run("blank")
    assert [w.value for w in at.warning] == ["No sheet found in the image."]
    from core.platform.storage import MeasurementRow
    with capture.session() as ss:
        assert ss.query(MeasurementRow).count() == 1        # only the uncalibrated one (in px)
