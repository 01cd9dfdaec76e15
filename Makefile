# Metal Sheet Monitor — the two commands for a fresh machine:
#   make run    installs into .venv and runs the app on the bundled demo clip
#   make test   installs everything the tests need (apt packages too) and runs them
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PORT   ?= 8501
export YOLO_OFFLINE := 1
export YOLO_CONFIG_DIR := $(CURDIR)/.yolo
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install install-dev system-deps run test check test-fast bench screenshots clean

$(VENV)/.installed: requirements.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools
	$(PIP) install -q -r requirements.txt
	SAM2_BUILD_CUDA=0 $(PIP) install -q --no-deps --no-build-isolation -r requirements-nodeps.txt
	$(PY) -c "import cv2, torch, torchvision, ultralytics, sam2, streamlit; print('cv2', cv2.__version__, '| torch', torch.__version__)"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

system-deps:
	bash .ci/system-deps.sh

run: install
	$(PY) -m streamlit run app.py --server.port $(PORT) --server.headless true

# NEU-DET for the tests: $(MSM_NEU_DIR), else the shared copy beside the checkout when there is one
MSM_NEU_DIR ?= $(shell [ -d ../shared/datasets/neu-det ] && cd ../shared/datasets/neu-det && pwd)
export MSM_NEU_DIR

# lint + import order, type check of core/ (see CONTRIBUTING.md)
check: install-dev
	$(VENV)/bin/ruff check core pages tests app.py conftest.py
	$(VENV)/bin/mypy

# the whole suite: checks, doctests of core/, every test (browser, RTSP, PostgreSQL, NEU-DET)
test: system-deps install-dev check
	$(PY) -m pytest -q -n 2 --dist worksteal tests core; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

test-fast: install-dev
	$(PY) -m pytest -q -x tests core -m "not slow"

bench: install
	$(PY) -m core bench count

# the README's pictures from the real app in headless Chromium (a throw-away data folder)
screenshots: install
	$(PY) tests/screenshots.py docs/screenshots

clean:
	rm -rf $(VENV) .pytest_cache
