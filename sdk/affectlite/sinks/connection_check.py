"""Why a broker connection failed, in one line a person can act on.

The MQTT client only says "unreachable" (or nothing, when a plain client talks to a TLS port and
the broker just closes the connection). This check repeats the connection by hand: TCP, then TLS
with the configured CA and client certificate, then an MQTT CONNECT, and names the first step
that fails: refused, no route, certificate verify failed (unknown CA, host name mismatch, not yet
valid or expired), TLS expected on a port spoken to in plain text, no TLS on a port spoken to in
TLS, a client certificate required. Used by the sink's log and by ``affectlite doctor``.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

#: An MQTT 3.1.1 CONNECT with client id "affectlite-check", clean session, keep-alive 10 s.
_CLIENT_ID = b"affectlite-check"
_CONNECT = (bytes([0x10, 12 + len(_CLIENT_ID)]) + b"\x00\x04MQTT\x04\x02\x00\x0a"
            + len(_CLIENT_ID).to_bytes(2, "big") + _CLIENT_ID)


def why_unreachable(config: dict[str, Any], timeout: float = 3.0) -> str:
    """A one-line cause, or "" when the broker answers the CONNECT after all."""
    host, port = config["host"], config["port"]
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as exc:
        return f"host name {host!r} does not resolve ({exc.strerror})"
    except ConnectionRefusedError:
        return f"connection refused: nothing listens on {host}:{port}"
    except OSError as exc:
        return f"cannot reach {host}:{port} ({exc.strerror or exc})"
    try:
        if config["tls"]:
            try:
                stream = _tls_context(config).wrap_socket(raw, server_hostname=host)
            except ssl.SSLCertVerificationError as exc:
                return f"certificate verify failed: {_verify_reason(exc, host)}"
            except ssl.SSLError as exc:
                text = str(exc).lower()
                if "wrong version number" in text or "record layer failure" in text or "packet length" in text:
                    return f"TLS handshake failed: {host}:{port} does not speak TLS (set mqtt.tls = false or use the TLS port)"
                if "certificate required" in text or "handshake failure" in text and not config["cert_file"]:
                    return "the broker requires a client certificate (mqtt.cert_file and mqtt.key_file)"
                return f"TLS handshake failed ({exc.reason or exc})"
            except OSError as exc:
                return (f"TLS handshake failed: the connection was closed ({exc.strerror or exc}); {host}:{port} "
                        "does not speak TLS (set mqtt.tls = false or use the TLS port)")
        else:
            stream = raw
        stream.settimeout(timeout)
        try:
            stream.sendall(_CONNECT)
            reply = stream.recv(4)
        except ssl.SSLError as exc:
            text = str(exc).lower()
            if "certificate required" in text or ("eof" in text and not config["cert_file"]):
                # TLS 1.3 asks for the client certificate after the handshake; Mosquitto then just
                # closes the connection.
                return "the broker requires a client certificate (mqtt.cert_file and mqtt.key_file)"
            return f"TLS error after the handshake ({exc.reason or exc})"
        except (socket.timeout, TimeoutError):
            reply = None
        except OSError as exc:
            reply = exc
        if not config["tls"] and (not isinstance(reply, bytes) or not reply or reply[:1] == b"\x15") \
                and _speaks_tls(host, port, timeout):
            return f"TLS expected: {host}:{port} is a TLS port (set mqtt.tls = true and mqtt.ca_file)"
        if reply is None:
            return f"{host}:{port} accepted the connection but sent no MQTT answer within {timeout:g} s"
        if isinstance(reply, OSError):
            if "certificate required" in str(reply).lower() or (
                    config["tls"] and not config["cert_file"] and _closes_without_client_certificate(config, timeout)):
                return "the broker requires a client certificate (mqtt.cert_file and mqtt.key_file)"
            return f"the connection was closed during the MQTT handshake ({reply.strerror or reply})"
        if not reply:
            return f"{host}:{port} closed the connection without an MQTT answer"
        if reply[:1] != b"\x20":
            return f"{host}:{port} does not answer as an MQTT broker"
        return ""
    finally:
        raw.close()


def _speaks_tls(host: str, port: int, timeout: float) -> bool:
    """Whether the port completes a TLS handshake (certificates not checked: only the protocol)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=host):
                return True
    except (OSError, ssl.SSLError):
        return False


def _closes_without_client_certificate(config: dict[str, Any], timeout: float) -> bool:
    """Whether the broker ends a TLS session that offered no client certificate by itself.

    Under TLS 1.3 the broker refuses a missing certificate after the handshake, with an alert; when
    the CONNECT crossed it, the broker's reset can destroy the alert, and a reset alone does not say
    why. Listening without sending anything lets the alert arrive."""
    try:
        with socket.create_connection((config["host"], config["port"]), timeout=timeout) as raw:
            with _tls_context(config).wrap_socket(raw, server_hostname=config["host"]) as stream:
                stream.settimeout(min(timeout, 2.0))
                stream.recv(1)
    except (socket.timeout, TimeoutError):
        return False
    except ssl.SSLError as exc:
        text = str(exc).lower()
        return "certificate required" in text or "eof" in text
    except OSError:
        return False
    return True                                                  # closed cleanly, before any CONNECT


def _tls_context(config: dict[str, Any]) -> ssl.SSLContext:
    """The context paho's ``tls_set`` builds for the sink, so that the diagnosis judges the
    certificates as the connection does: ``ssl.create_default_context`` also turns on strict X.509
    checks on Python 3.13, which would blame a certificate the connection accepts."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if config["cert_file"]:
        context.load_cert_chain(config["cert_file"], config["key_file"] or None)
    if config["ca_file"]:
        context.load_verify_locations(config["ca_file"])
    else:
        context.load_default_certs()
    return context


def _verify_reason(exc: ssl.SSLCertVerificationError, host: str) -> str:
    message = (exc.verify_message or str(exc)).lower()
    if "hostname mismatch" in message or "ip address mismatch" in message:
        return f"host name mismatch: the broker's certificate is not for {host!r}"
    if "not yet valid" in message:
        return "the broker's certificate is not yet valid (is this device's clock set? timedatectl)"
    if "expired" in message:
        return "the broker's certificate has expired"
    if ("local issuer" in message or "self-signed" in message or "unknown ca" in message
            or "signature failure" in message):
        return "unknown CA: the broker's certificate is not signed by mqtt.ca_file's CA"
    return exc.verify_message or str(exc)


def check_pem(path: str, what: str) -> str:
    """"" for a readable PEM file, else why not (for the configuration's check)."""
    try:
        text = Path(path).expanduser().read_bytes()
    except OSError as exc:
        return f"{path!r} cannot be read ({exc.strerror})"
    if b"-----BEGIN " not in text:
        return f"{path!r} is not a PEM file ({what} must be PEM text starting with '-----BEGIN')"
    if what.endswith(("ca_file", "ca-file")):
        # Loaded as the connection will load it: garbage between the markers, or a private key
        # given as the CA, is found here in one line instead of as an ssl traceback at connect.
        import ssl

        if b"PRIVATE KEY-----" in text and b"CERTIFICATE-----" not in text:
            return f"{path!r} holds a private key, not a CA certificate (give the CA's certificate, e.g. ca.crt)"
        try:
            ssl.create_default_context(cafile=str(Path(path).expanduser()))
        except (ssl.SSLError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
            return f"{path!r} is not a usable CA certificate (OpenSSL: {reason}); give the PEM certificate of the CA that signed the broker's"
    return ""
