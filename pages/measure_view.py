"""The [Measure Dimension] view of a capture (called from the Defect Analysis detail view).

Measures the top sheet with the active calibration (lens / plane), K and the camera height
from the settings and the stack height from the sheet's number × sheet thickness; draws
the rotated rectangle, shows "L × W mm", and stores the result (database + session log).

Example (in a page):
    >>> from pages.measure_view import show_measure     # doctest: +SKIP
    >>> show_measure(c, capture_row, image_bgr)          # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Optional

import cv2
import numpy as np
import streamlit as st

from core.qa.measure import MeasureError, Measurement, draw_measurement, measure_with_settings, store_measurement


def show_measure(c: Any, capture_row: Any, image_bgr: np.ndarray) -> Optional[Measurement]:
    """Measure ``image_bgr`` (the capture ``capture_row``), show and store the result."""
    _ = c._
    settings = c.db.load_settings()           # fresh: a calibration may have just changed
    cal = settings.calibration
    count = int(getattr(capture_row, "index", 0) or 0)
    try:
        m = measure_with_settings(image_bgr, settings, c.db, sheet_count=count)
    except MeasureError as e:
        st.warning(e.translated(_))
        return None
    if m.length_mm is not None:
        text = "{} × {} mm".format(c.num(m.length_mm, 1), c.num(m.width_mm, 1))
    else:
        text = "{} × {} px".format(c.num(m.length_px, 1), c.num(m.width_px, 1))
    st.image(cv2.cvtColor(draw_measurement(image_bgr, m, text), cv2.COLOR_BGR2RGB), width="content")
    if m.length_mm is not None:
        st.success(_("Length × width: {size}").format(size=text))
    else:
        st.warning(_("Not calibrated: {size}. Calibrate on the Calibration page to get mm.").format(size=text))
    facts = [_("Angle {a}°").format(a=c.num(m.angle_deg, 1))]
    if m.mm_per_px:
        facts.append(_("K {k} mm/px").format(k=c.num(m.mm_per_px, 4)))
    if m.parallax_compensated:
        facts.append(_("parallax compensated for a stack of {h} mm (sheet #{n} × {t} mm) under a camera at {cam} mm")
                     .format(h=c.num(m.stack_height_mm, 1), n=c.num(count), t=c.num(cal.sheet_thickness_mm, 2),
                             cam=c.num(cal.camera_height_mm)))
    if m.corrected:
        facts.append(_("corrected: {what}").format(what=", ".join(_(w) for w in m.corrected)))
    st.caption(" · ".join(facts))
    try:
        store_measurement(c.db, capture_row.id, m)
    except MeasureError as e:
        st.warning(e.translated(_))
    return m
