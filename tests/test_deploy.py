"""Deployment files: Dockerfiles (x86/CPU and Jetson), docker-compose.yml, the systemd unit
and .dockerignore. Docker cannot run on these machines and hadolint (a static Haskell binary)
is on neither PyPI nor Debian, so the Dockerfiles are parsed with Docker's own Go parser
(PyPI ``dockerfile``) and checked against the hadolint rules that matter here; the unit is
checked by ``systemd-analyze verify``; compose by its structure."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from needs import need

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = ["Dockerfile", "Dockerfile.jetson"]


# --------------------------------------------------------------------------- a small hadolint
def lint_dockerfile(text: str) -> list[str]:
    """hadolint-equivalent findings (rule id + line) for a Dockerfile's text."""
    import dockerfile
    try:
        cmds = dockerfile.parse_string(text)
    except dockerfile.GoParseError as e:
        return [f"DL1000 parse error: {e}"]
    lines = text.splitlines()
    out: list[str] = []
    ignored: dict[int, set[str]] = {}
    for i, ln in enumerate(lines, 1):  # "# hadolint ignore=DLxxxx" applies to the next instruction
        m = re.match(r"\s*#\s*hadolint\s+ignore=([\w,]+)", ln)
        if m:
            j = i + 1
            while j <= len(lines) and lines[j - 1].lstrip().startswith("#"):
                j += 1
            ignored.setdefault(j, set()).update(m.group(1).split(","))

    def add(rule: str, c, msg: str) -> None:
        if rule not in ignored.get(c.start_line, set()):
            out.append(f"{rule} line {c.start_line}: {msg}")

    args = {}
    stages = 0
    shell_pipefail = False
    last_user = None
    has_healthcheck = False
    for c in cmds:
        if c.cmd == "ARG":
            for v in c.value:
                k, _, d = v.partition("=")
                args[k] = d
        elif c.cmd == "FROM":
            stages += 1
            shell_pipefail = False
            last_user = None
            image = c.value[0]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), image)
            if image != "scratch" and ":" not in image.split("/")[-1] and "@" not in image:
                add("DL3006", c, f"tag the base image explicitly: {c.value[0]}")
            if image.endswith(":latest"):
                add("DL3007", c, "do not use the latest tag")
        elif c.cmd == "SHELL":
            shell_pipefail = "pipefail" in " ".join(c.value)
        elif c.cmd == "USER":
            last_user = c.value[0]
        elif c.cmd == "HEALTHCHECK":
            has_healthcheck = True
        elif c.cmd == "ADD":
            srcs = c.value[:-1]
            if not any(s.startswith(("http://", "https://")) or s.endswith((".tar", ".tar.gz", ".tgz")) for s in srcs):
                add("DL3020", c, "use COPY instead of ADD for files and folders")
        elif c.cmd in ("CMD", "ENTRYPOINT"):
            if not c.json:
                add("DL3025", c, f"use the JSON form for {c.cmd}")
        elif c.cmd == "WORKDIR":
            if not c.value[0].startswith(("/", "$")):
                add("DL3000", c, "use an absolute WORKDIR")
        elif c.cmd == "ENV":
            for k in c.value[::2]:
                if re.search(r"(PASSWORD|SECRET|TOKEN|_PIN)$", k):
                    add("SEC001", c, f"secret {k} baked into the image")
        elif c.cmd == "RUN":
            run = " ".join(c.value)
            if re.search(r"(^|&&|;)\s*cd\s", run):
                add("DL3003", c, "use WORKDIR to switch directory")
            if "|" in run.replace("||", "") and not shell_pipefail and not run.startswith("set -o pipefail"):
                add("DL4006", c, "set SHELL with -o pipefail before RUN with a pipe")
            if re.search(r"apt-get\s+install", run):
                if not re.search(r"apt-get\s+install[^&;]*\s(-y|--yes|-qq)\b", run):
                    add("DL3014", c, "use apt-get install -y")
                if "--no-install-recommends" not in run:
                    add("DL3015", c, "use --no-install-recommends")
                if "rm -rf /var/lib/apt/lists/*" not in run:
                    add("DL3009", c, "delete the apt lists in the same RUN")
                for pkg in re.findall(r"apt-get\s+install\s+([^&;|]*)", run):
                    names = [p for p in pkg.split() if not p.startswith("-")]
                    if any("=" not in p for p in names):
                        add("DL3008", c, "pin apt package versions")
            if re.search(r"\bapt\s+(install|update)", run):
                add("DL3027", c, "use apt-get, not apt")
            for seg in re.split(r"&&|;", run):
                if re.search(r"\bpip3?\s+install\b", seg) and "--no-cache-dir" not in seg \
                        and "PIP_NO_CACHE_DIR" not in text:
                    add("DL3042", c, "pip install with --no-cache-dir")
                m = re.search(r"\bpip3?\s+install\s+(.*)", seg)
                if m:
                    toks = [t for t in m.group(1).split() if not t.startswith("-")]
                    prev_flag_takes_value = re.findall(r"(-r|--index-url|-c)\s+(\S+)", m.group(1))
                    valued = {v for _f, v in prev_flag_takes_value}
                    loose = [t for t in toks if t not in valued and "==" not in t and not t.endswith((".txt", ".whl"))
                             and not t.startswith(("/", ".", "$"))]
                    if loose:
                        add("DL3013", c, f"pin pip packages: {' '.join(loose)}")
            if re.search(r"\bsudo\b", run):
                add("DL3004", c, "do not use sudo")
    if last_user in (None, "root", "0"):
        out.append("DL3002 final stage: switch to a non-root USER")
    if not has_healthcheck:
        out.append("HC001 no HEALTHCHECK")
    return out


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfiles_lint_clean(name):
    findings = lint_dockerfile((ROOT / name).read_text())
    assert findings == [], f"{name}:\n" + "\n".join(findings)


def test_linter_catches_bad_dockerfile():
    bad = ("FROM python\nRUN cd /x && apt-get update && apt-get install curl | tee log\n"
           "ADD . /app\nENV MSM_ENGINEER_PIN=1234\nRUN pip install requests\nCMD streamlit run app.py\n")
    rules = {f.split()[0] for f in lint_dockerfile(bad)}
    assert {"DL3006", "DL3003", "DL3014", "DL3015", "DL3009", "DL4006", "DL3020", "SEC001", "DL3042",
            "DL3013", "DL3025", "DL3002", "HC001"} <= rules
    assert lint_dockerfile("FROM python:3.11\nRUN [unclosed\n")  # something is reported, nothing raises


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_content(name):
    import dockerfile
    cmds = dockerfile.parse_file(str(ROOT / name))
    by = {}
    for c in cmds:
        by.setdefault(c.cmd, []).append(c)
    assert any("/_stcore/health" in " ".join(c.value) for c in by["HEALTHCHECK"])
    vols = [v for c in by["VOLUME"] for v in c.value]
    assert "/app/data" in vols and "/app/weights" in vols
    assert "8501" in [v for c in by["EXPOSE"] for v in c.value]
    env = " ".join(" ".join(c.value) for c in by["ENV"])
    assert "YOLO_OFFLINE" in env and "MSM_DATA_DIR" in env
    cmd = " ".join(by["CMD"][-1].value)
    assert "streamlit run app.py" in cmd and "0.0.0.0" in cmd
    text = (ROOT / name).read_text()
    assert "opencv-python " not in text and "flash-attn==" not in text


def test_jetson_image_is_l4t_r36_and_keeps_its_cuda_torch():
    text = (ROOT / "Dockerfile.jetson").read_text()
    base = re.search(r"ARG BASE_IMAGE=(\S+)", text).group(1)
    assert "l4t-pytorch" in base and "r36" in base
    assert re.search(r"grep -v -E '\^\(torch\|torchvision\)==' requirements.txt", text)
    assert "SAM2_BUILD_CUDA=0" in text and 'import flash_attn' in text   # SAM 2 without flash-attention


def test_cpu_image_installs_cpu_torch_and_one_opencv():
    text = (ROOT / "Dockerfile").read_text()
    assert "download.pytorch.org/whl/cpu" in text
    assert "--no-deps" in text and "requirements-nodeps.txt" in text   # ultralytics without opencv-python


# --------------------------------------------------------------------------- compose
def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_restart_healthcheck_volumes():
    c = _compose()
    services = c["services"]
    for name in ("msm", "msm-jetson"):
        svc = services[name]
        assert svc["restart"] == "unless-stopped"
        hc = svc["healthcheck"]
        assert "/_stcore/health" in " ".join(hc["test"]) and hc["retries"] >= 1
        vols = svc["volumes"]
        assert "./data:/app/data" in vols and "./weights:/app/weights" in vols
        assert "8501:8501" in svc["ports"]
        assert svc["environment"]["MSM_ENGINEER_PIN"].startswith("${")   # from .env, never a literal
    assert services["msm"]["build"]["dockerfile"] == "Dockerfile"
    assert services["msm-jetson"]["build"]["dockerfile"] == "Dockerfile.jetson"
    assert services["msm-jetson"]["profiles"] == ["jetson"] and services["msm-jetson"]["runtime"] == "nvidia"
    for svc in services.values():
        for k, v in (svc.get("environment") or {}).items():
            assert isinstance(v, str) and (v.startswith("${") or not re.search(r"PASS|PIN|SECRET", k)), k


def test_compose_keys_are_known():
    """Catch typos (e.g. 'restrat:') that docker compose would reject."""
    known = {"build", "image", "restart", "ports", "environment", "volumes", "healthcheck", "profiles",
             "runtime", "stop_grace_period", "depends_on", "command", "devices", "deploy", "env_file"}
    c = _compose()
    assert set(c) <= {"name", "services", "volumes", "x-app", "networks"}
    for name, svc in c["services"].items():
        assert set(svc) <= known, (name, set(svc) - known)
        assert set(svc["healthcheck"]) <= {"test", "interval", "timeout", "retries", "start_period"}


# --------------------------------------------------------------------------- systemd + .dockerignore
def test_systemd_unit_verifies(tmp_path):
    unit = (ROOT / "deploy" / "metal-sheet-monitor.service").read_text()
    assert re.search(r"^Restart=always$", unit, re.M) and re.search(r"^WantedBy=multi-user.target$", unit, re.M)
    assert "StartLimitIntervalSec=0" in unit and "EnvironmentFile=-/etc/metal-sheet-monitor.env" in unit
    assert "streamlit run app.py" in unit and "MSM_ENGINEER_PIN=" not in unit.replace("printf 'MSM_ENGINEER_PIN=...", "")
    need(shutil.which("systemd-analyze") is not None, "systemd-analyze not installed (Debian package systemd)")
    # point the unit at a throw-away install with a real python, so verify can check ExecStart
    fake = tmp_path / "opt"
    (fake / ".venv" / "bin").mkdir(parents=True)
    (fake / ".venv" / "bin" / "python").symlink_to(Path(__import__("sys").executable))
    p = tmp_path / "metal-sheet-monitor.service"
    p.write_text(unit.replace("/opt/metal-sheet-monitor", str(fake)))
    r = subprocess.run(["systemd-analyze", "verify", str(p)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    # and the check itself can fail
    bad = tmp_path / "bad.service"
    bad.write_text(unit.replace("/opt/metal-sheet-monitor", str(fake)).replace("Restart=always", "Restartt=always"))
    r = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True, text=True, timeout=60)
    assert "Restartt" in r.stderr


def test_dockerignore_keeps_secrets_and_state_out():
    lines = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")}
    for must in (".git", ".venv", "data/*", ".env", ".streamlit/secrets.toml", "tests"):
        assert must in lines, must
    assert "!data/demo/demo.mp4" in lines   # the demo clip ships so a fresh container does something


@pytest.mark.parametrize("name", DOCKERFILES)
def test_images_install_only_what_the_product_runs(name):
    text = (ROOT / name).read_text()
    assert "requirements-dev" not in text
    runtime = {l.split("==")[0].strip().lower() for l in (ROOT / "requirements.txt").read_text().splitlines()
               if l.strip() and not l.startswith("#")}
    assert not runtime & {"pytest", "pytest-timeout", "playwright", "pypdf", "dockerfile", "lap", "ruff", "mypy"}
