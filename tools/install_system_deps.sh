#!/usr/bin/env bash
# System libraries for MuJoCo's headless rendering (EGL, with OSMesa as the fallback).
# Installs them with apt-get when missing and we are root (or have passwordless sudo); otherwise
# says what is missing and carries on (rendering tests then skip with that reason).
set -euo pipefail
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }
missing=()
have_lib "libEGL.so.1" || missing+=(libegl1)
have_lib "libEGL_mesa.so.0" || missing+=(libegl-mesa0 libgl1-mesa-dri)
have_lib "libOSMesa.so" || missing+=(libosmesa6)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "install_system_deps: missing ${missing[*]} and no root; headless rendering may not work" >&2
  exit 0
fi
echo "install_system_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || \
  echo "install_system_deps: apt-get failed for ${missing[*]}; headless rendering may not work" >&2
