#!/usr/bin/env bash
# Installs Chromium and its driver (Debian packages) for the web client's browser tests
# (tests/web/), via apt, as root or through sudo, when /usr/bin/chromium is missing.
# Playwright drives this system Chromium: its own browser download is never used.
set -euo pipefail

[[ -x /usr/bin/chromium ]] && exit 0

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "browser-deps: installing chromium chromium-driver"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
