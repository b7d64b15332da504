# DisasterNet build, run and test entry points (GNU make). Non-interactive: works as root with
# CI=true and no stdin. `make test` is what CI runs (.ci/run).
#
#   make deps     system packages (only if missing), npm packages, tauri-driver
#   make ui       build the web UI into ui/dist
#   make app      build the desktop app (debug; embeds ui/dist)
#   make run      deps + ui + app, then start the app (ARGS="--data-dir /tmp/dn" to pass options)
#   make test     everything: Rust build + tests, binding staleness, UI unit tests, GUI e2e
#   make check-windows  the workspace and the app checked for Windows (CI runs it after test)
#   make bench    release build, then dn-bench (figures in docs/benchmarks.md)
#   make package  .deb bundle (release build, via the npm Tauri CLI)
#   make clean    remove build outputs

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := app
.DELETE_ON_ERROR:
# Steps share one target dir, ports and 2 cores: run them one at a time even under -j.
.NOTPARALLEL:

export CI ?= true
export DEBIAN_FRONTEND := noninteractive
export npm_config_fund := false
export npm_config_audit := false
export npm_config_update_notifier := false

CARGO ?= cargo
NPM ?= npm
# Binaries land in CARGO_TARGET_DIR when set (cargo resolves a relative one from the repo root,
# where these recipes run).
TARGET_DIR := $(abspath $(or $(CARGO_TARGET_DIR),target))
APP_BIN := $(TARGET_DIR)/debug/disasternet-app
CLI_BIN := $(TARGET_DIR)/debug/disasternet
TEST_OUT := $(TARGET_DIR)/test-output
CARGO_HOME ?= $(HOME)/.cargo
TAURI_DRIVER := $(shell command -v tauri-driver 2>/dev/null || echo $(CARGO_HOME)/bin/tauri-driver)
XVFB_RUN := xvfb-run -a -s "-screen 0 1280x800x24"

# The system packages of the platform notes (PLATFORM.md): build deps for Tauri/WebKitGTK,
# Xvfb + WebKitWebDriver for the GUI test, ImageMagick for icons/screens, netns test tools; plus
# for the GUI tests xdotool (native file dialogs, focus) and dunst + dbus (a real notification
# daemon on a private session bus).
APT_PACKAGES := \
  libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev \
  build-essential pkg-config libssl-dev libxdo-dev file \
  xvfb xauth webkit2gtk-driver imagemagick xdotool dunst dbus \
  iproute2 nftables ethtool avahi-utils
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_GET := $(SUDO) apt-get -o DPkg::Lock::Timeout=600

.PHONY: bench deps deps-apt deps-tools deps-npm deps-tauri-driver ui app run test test-rust \
        test-netns test-bindings test-ui test-gui package clean check-windows

# ------------------------------------------------------------------------------------- deps

deps: deps-apt deps-tools deps-npm deps-tauri-driver

deps-apt:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q '^install ok installed$$' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing missing packages:$$missing"; \
	  for attempt in 1 2 3; do \
	    if $(APT_GET) update && $(APT_GET) install -y --no-install-recommends $(APT_PACKAGES); \
	    then break; fi; \
	    [ "$$attempt" = 3 ] && exit 1; \
	    echo "deps: apt-get failed (another apt run?), retrying in 20 s"; sleep 20; \
	  done; \
	else echo "deps: system packages present"; fi

deps-tools:
	@for tool in $(CARGO) node $(NPM); do \
	  command -v "$$tool" >/dev/null || { echo "deps: '$$tool' not found: install Rust (rustup) and Node.js >= 20.19" >&2; exit 1; }; \
	done

deps-npm: ui/node_modules/.installed tests/gui/node_modules/.installed

# Reinstall only when the lock file changed (npm ci wipes node_modules each time).
%/node_modules/.installed: %/package-lock.json %/package.json
	cd $* && $(NPM) ci --no-audit --no-fund </dev/null
	touch $@

deps-tauri-driver:
	@if [ -x "$(TAURI_DRIVER)" ]; then echo "deps: tauri-driver present ($(TAURI_DRIVER))"; \
	else $(CARGO) install tauri-driver --locked </dev/null; fi

# ------------------------------------------------------------------------------------ build

ui: deps-npm
	cd ui && $(NPM) run build </dev/null

# The default `custom-protocol` feature embeds ui/dist into the binary.
app: ui
	$(CARGO) build -p disasternet-app

run: deps ui app
	$(APP_BIN) $(ARGS)

# ------------------------------------------------------------------------------------- test

test: deps ui
	$(CARGO) build --workspace --bins
	$(MAKE) --no-print-directory test-rust test-bindings test-ui test-gui test-netns

test-rust:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace --exclude dn-tests

# Multi-node scenarios in network namespaces: need root, run one at a time.
test-netns:
	$(CARGO) test -p dn-tests -- --test-threads=1

# `cargo test` regenerated ui/src/bindings (ts-rs): they must match what is committed.
test-bindings:
	@git diff --exit-code --stat -- ui/src/bindings \
	  || { echo "ui/src/bindings is stale: commit the regenerated files" >&2; exit 1; }
	@untracked="$$(git ls-files --others --exclude-standard -- ui/src/bindings)"; \
	if [ -n "$$untracked" ]; then \
	  echo "untracked generated bindings (commit them):" >&2; echo "$$untracked" >&2; exit 1; fi

# Twice, under two time zones and system locales (one UTC+14, so "today" differs from UTC's for
# half the day): a test that depends on where or when it runs fails in one of them. Tests fix
# "now" and the display locale themselves (ui/test/setup.ts).
UI_TEST_SETTINGS := "TZ=UTC LANG=en_US.UTF-8" "TZ=Pacific/Kiritimati LANG=de_DE.UTF-8"
test-ui: deps-npm
	@for s in $(UI_TEST_SETTINGS); do \
	  echo "test-ui: $$s"; \
	  (cd ui && env -u LC_ALL -u LC_TIME $$s $(NPM) test </dev/null) || exit 1; \
	done

# Needs the app built from the current ui/dist and the CLI (both from `cargo build --bins`).
# Runs tests/gui's `npm test`; two-apps.test.mjs there puts two apps in network namespaces (via
# dn-lab): it needs root, or DN_SKIP_NETNS=1 to skip it explicitly when not root.
test-gui: deps-npm deps-tauri-driver
	@test -x $(APP_BIN) && test -x $(CLI_BIN) && test -x $(TARGET_DIR)/debug/dn-lab \
	  || { echo "build first: cargo build --workspace --bins" >&2; exit 1; }
	mkdir -p $(TEST_OUT)/gui
	cd tests/gui && APP_BIN=$(APP_BIN) CLI_BIN=$(CLI_BIN) TAURI_DRIVER=$(TAURI_DRIVER) \
	  DN_LAB_BIN=$(TARGET_DIR)/debug/dn-lab GUI_OUT_DIR=$(TEST_OUT)/gui $(XVFB_RUN) $(NPM) test </dev/null

# -------------------------------------------------------------------------------- benchmarks

# Benchmarks (figures of record: docs/benchmarks.md). Release build; results on stdout; the
# network-namespace section needs root. BENCH_ARGS="--quick", "--json" or "--only sim,recon,…".
# The app section runs the release app (embedding ui/dist) under Xvfb through tauri-driver and
# WebKitWebDriver (tests/gui/bench-app.mjs): hence deps and ui.
BENCH_ARGS ?=
bench: deps ui
	$(CARGO) build --release -p disasternet-cli -p dn-tests -p dn-bench -p disasternet-app -p dn-floor
	TAURI_DRIVER=$(TAURI_DRIVER) $(TARGET_DIR)/release/dn-bench \
	  --disasternet $(TARGET_DIR)/release/disasternet --app $(TARGET_DIR)/release/disasternet-app \
	  $(BENCH_ARGS) </dev/null

# -------------------------------------------------------------------------------- platforms

# `cargo check --workspace --all-targets` for x86_64-pc-windows-gnu, the app included, warnings
# as errors. .ci/check-windows installs MinGW and unpacks Debian's rustc-web into
# $(TARGET_DIR)/windows-kit (docs/platforms.md). .ci/run calls it after `make test`.
check-windows: ui
	TARGET_DIR=$(TARGET_DIR) bash .ci/check-windows

# ---------------------------------------------------------------------------------- package

package: deps ui
	cd ui && $(NPM) run tauri -- build --bundles deb </dev/null
	@ls -1 $(TARGET_DIR)/release/bundle/deb/*.deb

clean:
	$(CARGO) clean
	rm -rf ui/dist ui/node_modules tests/gui/node_modules

# ------------------------------------------------------------------------------------- fuzz

# cargo-fuzz targets (fuzz/README.md). `make fuzz` runs every target for FUZZ_SECONDS on nightly
# (installing cargo-fuzz if missing), growing fuzz/corpus; `make test-fuzz-corpus` replays the
# committed corpus on stable. `cargo test --workspace` runs the same replay, so CI only replays.
# No sanitizer (the crates forbid unsafe code; panics and overflow checks are what we hunt, and
# it runs ~3x faster), debug assertions on (integer overflow panics). The fuzz build keeps its
# own target dir in fuzz/target.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(sort $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs))))
FUZZ_FLAGS := --sanitizer none --debug-assertions
.PHONY: fuzz test-fuzz-corpus
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) +nightly install cargo-fuzz --locked </dev/null
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  env -u CARGO_TARGET_DIR $(CARGO) +nightly fuzz run $(FUZZ_FLAGS) "$$t" -- \
	    -max_total_time=$(FUZZ_SECONDS) </dev/null || exit 1; \
	done

test-fuzz-corpus:
	$(CARGO) test -p dn-node --test fuzz_corpus -- --nocapture
