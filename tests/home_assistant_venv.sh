#!/usr/bin/env bash
# The Home Assistant cores that tests/test_home_assistant_core.py runs, each in a virtual environment
# outside the checkout (reused by later runs), with what their MQTT (and frontend) integrations need,
# so that `hass --skip-pip` starts offline:
#   2025.4.4 on Python 3.13: device discovery, the blueprint, the card, the screenshots;
#   2024.3.3 on Python 3.11: the last release Home Assistant Core on Raspberry Pi OS Bookworm's
#            Python gets, which reads only per-entity discovery (mqtt.discovery = "entities").
# Where a Python is missing this says so and goes on without failing; those tests skip with the reason.
#   usage: bash tests/home_assistant_venv.sh
set -euo pipefail

cache="${XDG_CACHE_HOME:-$HOME/.cache}/affectlite"

# shellcheck source=tests/find_python.sh
source "$(dirname "${BASH_SOURCE[0]}")/find_python.sh"

warm_up() {  # start the core in $1 once with pip allowed, as a first start of a real install does
    local venv="$1" config port pid
    config="$(mktemp -d)"
    port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    printf 'homeassistant:\n  time_zone: UTC\nhttp:\n  server_host: 127.0.0.1\n  server_port: %s\nautomation: []\n' \
        "$port" > "$config/configuration.yaml"
    "$venv/bin/hass" -c "$config" --log-file "$config/home-assistant.log" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 150); do
        if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/api/onboarding', timeout=2)" \
                2>/dev/null; then
            break
        fi
        sleep 2
    done
    kill "$pid" && wait "$pid" || true
    rm -rf "$config"
}

install_core() {  # $1: Home Assistant version, $2: Python version, $3: integrations whose requirements it needs,
                  # $4: "warm" to start it once with pip allowed, $5: pins for libraries released since
    local version="$1" want="$2" integrations="$3" warm="${4:-}" pins="${5:-}" venv python requirements
    venv="$cache/homeassistant-$version"
    if [ -f "$venv/.complete" ]; then
        echo "$venv"
        return 0
    fi
    if ! python="$(find_python "$want")"; then
        echo "home_assistant_venv.sh: no Python $want found (python$want or pyenv's $want.x); Home Assistant" \
             "$version needs it, so its tests will skip" >&2
        return 0
    fi
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "homeassistant==$version"
    # The integrations' own requirements, exactly as their manifests pin them.
    requirements="$("$venv/bin/python" - "$integrations" <<'PY'
import json, pathlib, sys, homeassistant.components as c
root = pathlib.Path(c.__file__).parent
print(" ".join(r for name in sys.argv[1].split() for r in json.loads((root / name / "manifest.json").read_text())["requirements"]))
PY
)"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install -q --disable-pip-version-check \
        -c "$("$venv/bin/python" -c 'import homeassistant, pathlib; print(pathlib.Path(homeassistant.__file__).parent / "package_constraints.txt")')" \
        $requirements $pins
    if [ "$warm" = warm ]; then
        warm_up "$venv"
    fi
    touch "$venv/.complete"
    echo "$venv"
}

install_core 2025.4.4 3.13 "mqtt frontend"
# 2024.3's package leaves most of its core integrations' libraries (recorder, person, backup...) to its
# first start, which installs them into its venv: that start happens here, so that the tests' run offline.
# josepy 2 (2025) removed what 2024.3's cloud library imports on every HTTP request.
install_core 2024.3.3 3.11 "mqtt camera stream" warm "josepy<2"
