#!/usr/bin/env bash
# The broker's own certificate authority and a server certificate for the names clients use.
#
#   make-certs.sh [--out DIR] [--days N] NAME...      (default DIR /etc/mosquitto/certs)
#   make-certs.sh lobby-pi lobby-pi.local 192.168.1.40
#
# Writes ca.crt (give it to every client: affectlite's [mqtt] ca_file, Home Assistant's
# "broker certificate", the kiosk browser's trusted authorities), ca.key (keep it here, 0600),
# server.crt and server.key (read by Mosquitto). An existing CA is kept, so that clients keep
# trusting it; the server certificate is made again (run again after a rename or a new address).
# NAME: a DNS name or an IP address; localhost and 127.0.0.1 are always included.
set -euo pipefail

OUT=/etc/mosquitto/certs
DAYS=3650
NAMES=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        --days) DAYS="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "make-certs: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) NAMES+=("$1"); shift ;;
    esac
done
if [[ ${#NAMES[@]} -eq 0 ]]; then
    echo "make-certs: give the names clients connect to, e.g. make-certs.sh $(hostname) $(hostname).local" >&2
    exit 2
fi
command -v openssl >/dev/null || { echo "make-certs: openssl is not installed (apt install openssl)" >&2; exit 1; }

SAN="DNS:localhost,IP:127.0.0.1"
for name in "${NAMES[@]}"; do
    if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then SAN="$SAN,IP:$name"; else SAN="$SAN,DNS:$name"; fi
done

mkdir -p "$OUT"
umask 077
if [[ ! -f "$OUT/ca.key" || ! -f "$OUT/ca.crt" ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$DAYS" -subj "/CN=affectlite broker CA ${NAMES[0]}" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" -addext "authorityKeyIdentifier=keyid:always" \
        -keyout "$OUT/ca.key" -out "$OUT/ca.crt" 2>/dev/null
    echo "made $OUT/ca.crt (clients trust this) and $OUT/ca.key (keep it private)"
else
    echo "keeping the CA in $OUT/ca.crt"
fi
openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "/CN=${NAMES[0]}" \
    -keyout "$OUT/server.key" -out "$OUT/server.csr" 2>/dev/null
EXT="$(mktemp)"
trap 'rm -f "$EXT" "$OUT/server.csr"' EXIT
# The key identifiers are written whatever this OpenSSL's defaults: strict verifiers (a client that
# uses Python 3.13's ssl.create_default_context, for one) refuse a certificate without them.
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n' \
    "$SAN" > "$EXT"
openssl x509 -req -in "$OUT/server.csr" -CA "$OUT/ca.crt" -CAkey "$OUT/ca.key" -CAcreateserial \
    -days "$DAYS" -sha256 -extfile "$EXT" -out "$OUT/server.crt" 2>/dev/null
chmod 0644 "$OUT/ca.crt" "$OUT/server.crt"
if getent group mosquitto >/dev/null && [[ $(id -u) -eq 0 ]]; then
    chgrp mosquitto "$OUT/server.key" && chmod 0640 "$OUT/server.key"
fi
echo "made $OUT/server.crt for $SAN"
