"""The code base keeps its shape: packages by concern, a pure counting engine, tools that
runtime code never imports, no development-machine leftovers."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["counting", "live", "models", "qa", "reports", "platform", "synthetic", "bench"]
RUNTIME = ["counting", "live", "models", "qa", "reports", "platform"]
# the one allowed exception: training asks for a synthetic data set when told to
ALLOWED_TOOL_IMPORTS = {("core/models/training.py", "core.synthetic")}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function (lazy imports count)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


@pytest.mark.parametrize("pkg", PACKAGES)
def test_every_package_imports_alone_and_exports_what_it_says(pkg):
    code = (f"import core.{pkg} as m; names = getattr(m, '__all__', []); [getattr(m, n) for n in names]; "
            f"assert m.__doc__ and len(m.__doc__) > 40")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_the_counting_engine_is_pure():
    """Importing every module of core.counting pulls in no source, database, translation,
    Streamlit or SQLAlchemy code (frames in, events out)."""
    mods = [f"core.counting.{p.stem}" for p in (ROOT / "core" / "counting").glob("*.py") if p.stem != "__init__"]
    code = ("import sys, importlib\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            "bad = [m for m in sys.modules if m.startswith(('core.live', 'core.platform.storage', "
            "'core.platform.i18n', 'streamlit', 'sqlalchemy', 'core.reports', 'core.models'))]\n"
            "print(','.join(sorted(bad)))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "", f"core.counting imports {r.stdout.strip()}"


def test_runtime_code_never_imports_the_tools():
    files = [p for pkg in RUNTIME for p in (ROOT / "core" / pkg).rglob("*.py")]
    files += list((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
    bad = []
    for f in files:
        rel = f.relative_to(ROOT).as_posix()
        for m in _imports(f):
            for tool in ("core.synthetic", "core.bench"):
                if (m == tool or m.startswith(tool + ".")) and (rel, tool) not in ALLOWED_TOOL_IMPORTS:
                    bad.append(f"{rel} imports {m}")
    assert not bad, "\n".join(bad)


def test_core_never_imports_streamlit():
    bad = [f"{p.relative_to(ROOT)}" for p in (ROOT / "core").rglob("*.py")
           if any(m == "streamlit" or m.startswith("streamlit.") for m in _imports(p))]
    assert not bad, bad


def test_no_flat_modules_left_in_core():
    flat = sorted(p.name for p in (ROOT / "core").glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert flat == [], f"put these in a package by concern: {flat}"


def test_no_development_machine_paths_and_no_stray_wheels():
    texts = [p for d in ("core", "pages") for p in (ROOT / d).rglob("*.py")]
    texts += [ROOT / "app.py", *ROOT.glob("*.md"), *(ROOT / "weights").glob("*.md"), *(ROOT / "data").glob("*.md"),
              *(ROOT / "deploy").glob("*.md")]
    bad = [str(p.relative_to(ROOT)) for p in texts if "/work/" in p.read_text(encoding="utf-8")]
    assert not bad, f"absolute development paths in {bad}"
    tracked = subprocess.run(["git", "ls-files", "*.whl"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert tracked == [], tracked


def test_no_skips_of_project_code_in_the_tests():
    """Skips are only for missing machine parts, through tests/needs.py."""
    bad = []
    for p in (ROOT / "tests").glob("*.py"):
        if p.name in ("needs.py", "test_layout.py"):
            continue
        src = p.read_text(encoding="utf-8")
        if "importorskip" in src or "pytest.skip(" in src:
            bad.append(p.name)
    assert not bad, bad


def test_tools_run_without_the_tests_folder():
    """The soak and the benchmarks ship in the image, tests/ does not: nothing in core/ may
    reach into tests/ (the RTSP test server lives in core/bench)."""
    bad = [str(p.relative_to(ROOT)) for p in (ROOT / "core").rglob("*.py")
           if '"tests"' in (s := p.read_text(encoding="utf-8")) or "'tests'" in s or '/ "tests" /' in s]
    assert not bad, bad


def test_the_readme_benchmark_table_is_what_the_recorded_runs_say():
    """README figures come from `--record`ed runs (docs/bench/*.json), not from memory."""
    from core.bench.record import RESULTS_DIR, readme_block
    assert list(RESULTS_DIR.glob("*.json")), "no recorded benchmark runs"
    assert readme_block() in (ROOT / "README.md").read_text(encoding="utf-8"), \
        "README's benchmark block differs from docs/bench: run `python -m core bench readme`"
