#!/usr/bin/env bash
# Install affectlite as a service on Raspberry Pi OS (Bookworm: Python 3.11; Trixie: 3.13), a Coral Dev Board or a
# Debian/Ubuntu PC. Run from a checkout of the repository, as root:
#
#   sudo scripts/install-pi.sh --target raspberry-pi-4
#   sudo scripts/install-pi.sh --target coral-usb --edgetpu-model face_expression_int8_edgetpu.tflite \
#        --libedgetpu-deb ./libedgetpu1-std_16.0tf2.17.1-1.bookworm_arm64.deb
#   sudo scripts/install-pi.sh --target raspberry-pi-5 --broker      # also a local Mosquitto with ACLs
#   scripts/install-pi.sh --target raspberry-pi-4 --dry-run          # print the steps, change nothing
#
# Steps: apt packages -> system user -> virtual environment that sees the system's picamera2 and
# pyaudio -> affectlite -> configuration and secrets -> (Coral runtime and compiled model) ->
# (Mosquitto) -> systemd unit -> `affectlite doctor` as the service user.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGETS="raspberry-pi-4 raspberry-pi-5 coral-usb coral-dev-board linux-webcam"
PREFIX=/opt/affectlite
ETC=/etc/affectlite
STATE=/var/lib/affectlite
USER_NAME=affectlite
TARGET=""
PACKAGE="$REPO"            # what pip installs: this checkout by default, or a built wheel (dist/affectlite-*.whl)
EDGETPU_MODEL=""
LIBEDGETPU_DEB=""
BROKER=0
DRY_RUN=0

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    echo "options: --target {${TARGETS// /|}} [--package SPEC] [--edgetpu-model FILE] [--libedgetpu-deb FILE]"
    echo "         [--broker] [--dry-run]"
}

fail() { echo "install-pi: error: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --target) TARGET="${2:-}"; shift 2 ;;
        --package) PACKAGE="${2:-}"; shift 2 ;;
        --edgetpu-model) EDGETPU_MODEL="${2:-}"; shift 2 ;;
        --libedgetpu-deb) LIBEDGETPU_DEB="${2:-}"; shift 2 ;;
        --broker) BROKER=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; fail "unknown option '$1'" ;;
    esac
done

[[ -n "$TARGET" ]] || { usage >&2; fail "--target is required"; }
[[ " $TARGETS " == *" $TARGET "* ]] || fail "unknown target '$TARGET' (one of: $TARGETS)"
CONFIG="$REPO/firmware_configs/$TARGET.toml"
[[ -f "$CONFIG" ]] || fail "$CONFIG is missing"
CORAL=0; [[ "$TARGET" == coral-* ]] && CORAL=1
if [[ $CORAL -eq 1 && -z "$EDGETPU_MODEL" ]]; then
    fail "$TARGET needs --edgetpu-model FILE_edgetpu.tflite (compile it on an x86-64 PC: edgetpu_compiler MODEL.tflite)"
fi
if [[ -n "$EDGETPU_MODEL" ]]; then
    [[ "$EDGETPU_MODEL" == *_edgetpu.tflite && -f "$EDGETPU_MODEL" ]] || fail "--edgetpu-model: $EDGETPU_MODEL is not an existing *_edgetpu.tflite"
    CPU_TWIN="${EDGETPU_MODEL%_edgetpu.tflite}.tflite"
    [[ -f "$CPU_TWIN" && -f "${CPU_TWIN%.tflite}.json" ]] || fail "--edgetpu-model: $CPU_TWIN and its card ${CPU_TWIN%.tflite}.json must sit beside it"
fi
[[ -z "$LIBEDGETPU_DEB" || -f "$LIBEDGETPU_DEB" ]] || fail "--libedgetpu-deb: $LIBEDGETPU_DEB not found"
if [[ $DRY_RUN -eq 0 && $EUID -ne 0 ]]; then fail "run as root (sudo), or add --dry-run to see the steps"; fi

run() {
    echo "+ $*"
    if [[ $DRY_RUN -eq 0 ]]; then "$@"; fi
}
step() { echo; echo "== $*"; }

step "checking the system"
PY_VERSION="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || fail "Python $PY_VERSION found; affectlite needs 3.11 or newer (Raspberry Pi OS Bookworm has 3.11, Trixie 3.13)"
echo "Python $PY_VERSION, $(uname -m), target $TARGET"

step "apt packages"
APT="python3-venv libportaudio2 python3-pyaudio"
case "$TARGET" in
    raspberry-pi-*|coral-usb) APT="$APT python3-picamera2" ;;
esac
[[ $BROKER -eq 1 ]] && APT="$APT mosquitto mosquitto-clients"
run apt-get update
# shellcheck disable=SC2086
run apt-get install -y --no-install-recommends $APT
if [[ -n "$LIBEDGETPU_DEB" ]]; then
    run apt-get install -y "$(realpath "$LIBEDGETPU_DEB")"
elif [[ $CORAL -eq 1 ]]; then
    echo "note: no --libedgetpu-deb given; the Edge TPU runtime must already be installed (see README, 'Coral')"
fi

step "service user"
GROUPS_LIST=video,audio
[[ $CORAL -eq 1 ]] && GROUPS_LIST="$GROUPS_LIST,plugdev"
if id "$USER_NAME" >/dev/null 2>&1; then
    run usermod --append --groups "$GROUPS_LIST" "$USER_NAME"
else
    run useradd --system --home-dir "$STATE" --shell /usr/sbin/nologin --groups "$GROUPS_LIST" "$USER_NAME"
fi

step "virtual environment (sees the system's picamera2 and pyaudio)"
run python3 -m venv --system-site-packages "$PREFIX/venv"
run "$PREFIX/venv/bin/pip" install --upgrade pip
EXTRAS="audio"
case "$TARGET" in
    raspberry-pi-*|coral-usb) EXTRAS="pi,audio" ;;
esac
if [[ "$PACKAGE" == "$REPO" ]]; then SPEC="$REPO[$EXTRAS]"; else SPEC="$PACKAGE"; fi
# picamera2's JPEG encoder (simplejpeg, from apt) is built against the system's numpy. A newer
# numpy that a dependency pulls into the venv (ml_dtypes 0.7 wants numpy 2; Bookworm has 1.24)
# would shadow it, and picamera2 would fail to import ("numpy.dtype size changed"): keep the
# system's numpy, and pip picks the dependencies that work with it.
PINS=()
if SYSTEM_NUMPY="$(python3 -c 'import numpy; print(numpy.__version__)' 2>/dev/null)"; then
    PINS=("numpy==$SYSTEM_NUMPY")
elif [[ $DRY_RUN -eq 1 ]]; then
    echo "note: numpy is not installed yet; the real run pins the one apt installs with python3-picamera2"
fi
run "$PREFIX/venv/bin/pip" install "$SPEC" "${PINS[@]}"

step "configuration"
if [[ -f "$ETC/config.toml" ]]; then
    echo "keeping the existing $ETC/config.toml"
else
    run install -D -m 0644 "$CONFIG" "$ETC/config.toml"
fi
[[ -f "$ETC/secrets.env" ]] || run install -D -m 0600 -o root -g root /dev/null "$ETC/secrets.env"
run install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$STATE" "$STATE/models"
if [[ -n "$EDGETPU_MODEL" ]]; then
    run install -m 0644 "$EDGETPU_MODEL" "$CPU_TWIN" "${CPU_TWIN%.tflite}.json" "$STATE/models/"
fi

if [[ $BROKER -eq 1 ]]; then
    step "Mosquitto: per-device ACLs; plain MQTT and WebSocket on this machine, TLS for the network"
    run install -m 0644 "$REPO/firmware_configs/mosquitto/affectlite.conf" /etc/mosquitto/conf.d/affectlite.conf
    run install -m 0640 -g mosquitto "$REPO/firmware_configs/mosquitto/affectlite.acl" /etc/mosquitto/affectlite.acl
    run install -m 0640 -g mosquitto "$REPO/firmware_configs/mosquitto/kiosk.acl" /etc/mosquitto/kiosk.acl
    [[ -f /etc/mosquitto/kiosk.passwd ]] || run install -m 0640 -g mosquitto /dev/null /etc/mosquitto/kiosk.passwd
    # The same rule as affectlite.config.safe_device_id, which names the device when
    # mqtt.device_id is empty: the MQTT user name must equal the device id for the ACL's %u.
    DEVICE_ID="$(hostname | cut -d. -f1 | tr 'A-Z' 'a-z' | sed -E 's/[^a-z0-9_-]+/-/g; s/^-+//; s/-+$//' | cut -c1-64)"
    DEVICE_ID="${DEVICE_ID:-affectlite}"
    if [[ ! -f /etc/mosquitto/affectlite.passwd ]]; then
        # The device logs in as its device id (the ACL's %u) with a generated password that only
        # root and the service can read.
        PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
        echo "+ mosquitto_passwd -c -b /etc/mosquitto/affectlite.passwd $DEVICE_ID <generated>"
        if [[ $DRY_RUN -eq 0 ]]; then
            mosquitto_passwd -c -b /etc/mosquitto/affectlite.passwd "$DEVICE_ID" "$PASSWORD"
            chgrp mosquitto /etc/mosquitto/affectlite.passwd && chmod 0640 /etc/mosquitto/affectlite.passwd
            printf 'AFFECTLITE_MQTT_USER=%s\nAFFECTLITE_MQTT_PASSWORD=%s\n' "$DEVICE_ID" "$PASSWORD" >> "$ETC/secrets.env"
        fi
        echo "+ (AFFECTLITE_MQTT_USER and AFFECTLITE_MQTT_PASSWORD appended to $ETC/secrets.env)"
    fi
    if [[ ! -f /etc/mosquitto/certs/server.crt ]]; then
        # The names and addresses clients on the network use for this device.
        run "$REPO/firmware_configs/mosquitto/make-certs.sh" --out /etc/mosquitto/certs "$DEVICE_ID" "$DEVICE_ID.local" \
            $(hostname -I 2>/dev/null || true)
    fi
    echo "add users when you need them (one per client; the broker ties each session to its user):"
    echo "  sudo $PREFIX/venv/bin/affectlite broker-user kiosk kiosk.lobby           # a kiosk screen (9001 here, 9443 TLS)"
    echo "  sudo $PREFIX/venv/bin/affectlite broker-user automation homeassistant    # TLS on 8883, trusting /etc/mosquitto/certs/ca.crt"
    run systemctl restart mosquitto
fi

step "systemd unit"
run install -m 0644 "$REPO/firmware_configs/affectlite.service" /etc/systemd/system/affectlite.service
if [[ "$TARGET" == coral-dev-board ]]; then
    run sed -i 's/^SupplementaryGroups=.*/& apex/' /etc/systemd/system/affectlite.service
fi
run systemctl daemon-reload

step "checking what the service will see"
if ! run runuser -u "$USER_NAME" -- "$PREFIX/venv/bin/affectlite" doctor --config "$ETC/config.toml"; then
    echo "install-pi: the configuration cannot run yet (PROBLEM lines above); fix them, then:" >&2
    echo "  sudo systemctl enable --now affectlite" >&2
    exit 1
fi
run systemctl enable --now affectlite
echo
echo "done: journalctl -u affectlite -f   |   mosquitto_sub -v -t 'affectlite/#'"
