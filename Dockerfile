# syntax=docker/dockerfile:1
# Metal Sheet Monitor — x86-64 / CPU image (a laptop, a CPU box, a supervisor's server).
# The Jetson image is Dockerfile.jetson. Runtime state lives in the volumes /app/data and
# /app/weights (see docker-compose.yml); the image itself holds no secret: the engineer PIN
# comes from the environment (MSM_ENGINEER_PIN) on first run.

FROM python:3.11-slim-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# a compiler only for source-only packages (sam2); it stays out of the final image
# distro packages follow the base image's security updates, so they are not version-pinned
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/build
COPY requirements.txt requirements-nodeps.txt ./
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# CPU-only torch first (the PyPI x86 wheel would pull the CUDA runtime, gigabytes for nothing here)
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --upgrade pip wheel setuptools \
 && grep -E '^(torch|torchvision)==' requirements.txt > torch.txt \
 && pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu -r torch.txt \
 && pip install --no-cache-dir -r requirements.txt \
 && SAM2_BUILD_CUDA=0 pip install --no-cache-dir --no-deps --no-build-isolation -r requirements-nodeps.txt \
 && python -c "import cv2, torch, ultralytics, sam2, streamlit; print('cv2', cv2.__version__, 'torch', torch.__version__)"

FROM python:3.11-slim-bookworm
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    YOLO_OFFLINE=1 \
    YOLO_CONFIG_DIR=/app/.yolo \
    MSM_DATA_DIR=/app/data \
    MSM_WEIGHTS_DIR=/app/weights \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false
# libglib for cv2's headless build; no curl: the health check uses Python
# distro packages follow the base image's security updates, so they are not version-pinned
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /home/msm msm
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=msm:msm . /app
RUN mkdir -p /app/data /app/weights /app/.yolo && chown -R msm:msm /app/data /app/weights /app/.yolo
USER msm
VOLUME ["/app/data", "/app/weights"]
EXPOSE 8501 8502
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]
CMD ["python", "-m", "streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true"]
