#!/usr/bin/env bash
# The Home Assistant core that tests/test_home_assistant_core.py runs: a virtual environment outside
# the checkout (reused by later runs), with the pinned version and what its MQTT and frontend
# integrations need, so that `hass --skip-pip` starts offline. Home Assistant 2025.4 needs Python
# 3.13; where none is found this says so and stops without failing, and the tests skip with the reason.
#   usage: tests/home_assistant_venv.sh          (prints the venv's folder)
set -euo pipefail

version="2025.4.4"
venv="${AFFECTLITE_HA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/affectlite/homeassistant-$version}"

if [ -f "$venv/.complete" ]; then
    echo "$venv"
    exit 0
fi
python=""
for candidate in python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3 /usr/bin/python3.13 /usr/local/bin/python3.13; do
    # a pyenv shim answers to the name without having the version: ask the interpreter itself
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; then
        python="$("$candidate" -c 'import sys; print(sys.executable)')"
        break
    fi
done
if [ -z "$python" ]; then
    echo "home_assistant_venv.sh: no Python 3.13 found (python3.13 or pyenv's 3.13.x); Home Assistant $version" \
         "needs it, so the real-core tests will skip" >&2
    exit 0
fi
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "homeassistant==$version"
# The integrations' own requirements, exactly as their manifests pin them.
requirements="$("$venv/bin/python" - <<'PY'
import json, pathlib, homeassistant.components as c
root = pathlib.Path(c.__file__).parent
print(" ".join(r for name in ("mqtt", "frontend") for r in json.loads((root / name / "manifest.json").read_text())["requirements"]))
PY
)"
# shellcheck disable=SC2086
"$venv/bin/pip" install -q --disable-pip-version-check $requirements
touch "$venv/.complete"
echo "$venv"
