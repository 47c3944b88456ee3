#!/usr/bin/env bash
# Installs the system packages the Python dependencies build against (mysqlclient needs the
# MariaDB client headers and pkg-config), and curl for the README's examples, via apt, as root
# or through sudo.
set -euo pipefail

packages=()
pkg-config --exists mariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null \
  || packages+=(libmariadb-dev pkg-config)
command -v gcc >/dev/null || packages+=(build-essential)
command -v curl >/dev/null || packages+=(curl)  # the README's examples
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
  || packages+=(python3-dev)
python3 -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3-venv)

if ((${#packages[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "system-deps: installing ${packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi
