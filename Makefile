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

.PHONY: install system-deps run test test-fast bench screenshots clean

$(VENV)/.installed: requirements.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools
	$(PIP) install -q -r requirements.txt
	SAM2_BUILD_CUDA=0 $(PIP) install -q --no-deps --no-build-isolation -r requirements-nodeps.txt
	$(PY) -c "import cv2, torch, torchvision, ultralytics, sam2, streamlit; print('cv2', cv2.__version__, '| torch', torch.__version__)"
	touch $@

install: $(VENV)/.installed

system-deps:
	bash .ci/system-deps.sh

run: install
	$(PY) -m streamlit run app.py --server.port $(PORT) --server.headless true

test: system-deps install
	$(PY) -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

test-fast: install
	$(PY) -m pytest -q -x tests -m "not slow"

bench: install
	$(PY) -m core bench count

# the README's pictures from the real app in headless Chromium (a throw-away data folder)
screenshots: install
	$(PY) tests/screenshots.py docs/screenshots

clean:
	rm -rf $(VENV) .pytest_cache
