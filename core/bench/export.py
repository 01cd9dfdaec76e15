"""``python -m core bench export``: time of each export format for one large synthetic session."""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core.bench.record import add_record_arg, record
from core.platform.paths import Paths
from core.platform.storage import Database
from core.reports.cli import _fail, _Parser
from core.reports.common import FORMATS, ReportError
from core.reports.export import export_sessions
from core.synthetic.session import make_synthetic_session


def bench_export(argv: list[str]) -> int:
    """``python -m core bench export``: build a session of 1,000 captures (synthetic rows and
    small images, in a throw-away data folder) and print the time of each export format."""
    p = _Parser(prog="python -m core bench export", description=bench_export.__doc__)
    p.add_argument("--captures", type=int, default=1000)
    p.add_argument("--formats", default="json,csv,xlsx,pdf,zip")
    p.add_argument("--image-size", default="320x240", help="WxH of the synthetic captures")
    p.add_argument("--lang", default="en")
    p.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    add_record_arg(p)
    try:
        a = p.parse_args(argv)
        fmts = [f.strip() for f in a.formats.split(",") if f.strip()]
        bad = [f for f in fmts if f not in FORMATS]
        if bad or a.captures < 1:
            raise ReportError(f"bad --formats {bad}" if bad else "--captures must be ≥ 1")
        w, h = (int(v) for v in a.image_size.lower().split("x"))
    except SystemExit as e:
        return int(e.code or 0)
    except (ReportError, ValueError) as e:
        return _fail(str(e))
    tmp = Path(tempfile.mkdtemp(prefix="msm-bench-export-"))
    paths = Paths(data=tmp / "data", weights=tmp / "weights").ensure()
    db = Database(f"sqlite:///{paths.db_dir / 'bench.sqlite3'}")
    try:
        t0 = time.perf_counter()
        sid = make_synthetic_session(db, paths, a.captures, name="Bench export", image_size=(w, h))
        build_s = time.perf_counter() - t0
        print(f"built session {sid}: {a.captures} captures in {build_s:.1f} s", file=sys.stderr)
        results: dict[str, Any] = {"captures": a.captures, "image_size": [w, h], "build_s": round(build_s, 2),
                                   "formats": {}}
        for fmt in fmts:
            out = tmp / f"bench.{fmt}"
            r = export_sessions(db, paths, [sid], fmt, out, lang=a.lang)
            results["formats"][fmt] = {"seconds": round(r.seconds, 2), "bytes": r.bytes,
                                       "under_30s": r.seconds < 30.0}
            print(f"{fmt:>5}: {r.seconds:6.2f} s  {r.bytes / 1e6:7.2f} MB", file=sys.stderr)
        results["all_under_30s"] = all(v["under_30s"] for v in results["formats"].values())
        print(json.dumps(results))
        if a.record:
            record("export", argv, f"one synthetic session of {a.captures} captures at {w}×{h} "
                   "(core.synthetic.session)", results,
                   ", ".join(f"{f.upper()} {v['seconds']} s" for f, v in results["formats"].items()))
    finally:
        db.dispose()
        if a.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    return 0
