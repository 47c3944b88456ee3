#!/usr/bin/env bash
# What `make bench` needs beyond `make install`: wrk, the HTTP load generator (Debian package).
set -euo pipefail
command -v wrk >/dev/null && exit 0
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "bench: installing wrk"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
