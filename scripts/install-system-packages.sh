#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages coach needs, and only those that are missing.
# Usage: scripts/install-system-packages.sh [--test]
#   (no flag)  what `coach start` needs: espeak-ng (speech), libasound2-dev + gcc (to build simpleaudio),
#              the Python headers and venv module
#   --test     also what the end-to-end audio test needs: a PulseAudio null sink to record from, and sox;
#              and Chromium with its driver and a font, for the session page's browser test (tests/test_page.py)
set -euo pipefail

want=(espeak-ng libasound2-dev gcc)
if [[ "${1:-}" == "--test" ]]; then
    want+=(pulseaudio pulseaudio-utils libasound2-plugins sox chromium chromium-driver fonts-dejavu-core)
fi

python=${PYTHON:-python3}
# A python3 from Debian needs its venv module and headers as packages; a self-built one has them already.
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    want+=(python3-venv)
fi
if ! "$python" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' >/dev/null 2>&1; then
    want+=(python3-dev)
fi

missing=()
for pkg in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "coach: please install these system packages yourself: ${missing[*]} (no apt-get here; see README)" >&2
    exit 1
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "coach: run as root or install sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
echo "coach: installing system packages: ${missing[*]}"
$sudo apt-get update -qq
# Through env, so that sudo (which resets the environment) passes it on: no debconf question
# can wait unseen behind the output sent to /dev/null.
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
