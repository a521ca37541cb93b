# The two entry points of the README: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MOSQUITTO := /usr/sbin/mosquitto

.PHONY: demo test bench check lint format typecheck importlint pytest mosquitto chromium dbus debian-venv clean dist deb bluez-check

demo: $(VENV)/.installed-demo
	$(BIN)/wgw demo

test: check pytest

bench: $(VENV)/.installed-bench
	$(BIN)/python bench/outbox.py
	$(BIN)/python bench/dsp.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/fieldday.py

check: lint typecheck importlint

# The wheel and sdist (python -m build), and the Debian package built from that wheel.
dist: $(VENV)/.installed-test
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

deb: dist
	$(BIN)/python deploy/debian/build.py dist/wearable_gateway-*.whl dist

lint: $(VENV)/.installed-test
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

importlint: $(VENV)/.installed-test
	$(BIN)/lint-imports

pytest: $(VENV)/.installed-test mosquitto chromium dbus debian-venv
	$(BIN)/pytest

# Debian's python3 needs the python3-venv package for `-m venv`; install it when we can.
$(VENV)/bin/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
	      && $(PYTHON) -m venv $(VENV); \
	  else \
	    echo "python3 cannot create a venv: run 'sudo apt-get install python3-venv', then make again"; exit 1; \
	  fi; }

$(VENV)/.installed-demo: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@ $(VENV)/.installed-demo

$(VENV)/.installed-bench: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	@touch $@ $(VENV)/.installed-test $(VENV)/.installed-demo

mosquitto:
	@if [ ! -x $(MOSQUITTO) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; \
	  else \
	    echo "the tests need Mosquitto: run 'sudo apt-get install mosquitto', then make test again"; exit 1; \
	  fi; \
	fi

# The Debian package's test installs it, and its postinst builds a venv with Debian's python3.
debian-venv:
	@if [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -m venv -h >/dev/null 2>&1 \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	fi

# The live page's test drives a real headless Chromium through its driver.
chromium:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "the tests need Chromium: run 'sudo apt-get install chromium chromium-driver', then make test again"; exit 1; \
	  fi; \
	fi

# The pairing agent's test talks to it over a private bus of a real dbus-daemon.
dbus:
	@if ! command -v dbus-daemon >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dbus-daemon >/dev/null; \
	  else \
	    echo "the tests need dbus-daemon: run 'sudo apt-get install dbus-daemon', then make test again"; exit 1; \
	  fi; \
	fi

# Opt-in, not part of `make test` (about three minutes): the daemon on bleak's BlueZ backend in
# an emulated VM (Debian's kernel, bluetoothd 5.66), the wearables on bumble behind /dev/vhci.
BLUEZ_CHECK_PACKAGES := qemu-system-x86 linux-image-amd64 bluez busybox-static cpio dbus-daemon
bluez-check: $(VENV)/.installed-test
	@if ! command -v qemu-system-x86_64 >/dev/null || ! command -v busybox >/dev/null \
	    || ! ls /boot/vmlinuz-*-amd64 >/dev/null 2>&1 || [ ! -x /usr/libexec/bluetooth/bluetoothd ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(BLUEZ_CHECK_PACKAGES) >/dev/null; \
	  else \
	    echo "the BlueZ check needs root and: apt-get install $(BLUEZ_CHECK_PACKAGES)"; exit 1; \
	  fi; \
	fi
	$(BIN)/python -m tests.bluez.vm

clean:
	rm -rf $(VENV) state .mypy_cache .ruff_cache .pytest_cache .hypothesis
