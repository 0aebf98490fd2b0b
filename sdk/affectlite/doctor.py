"""``affectlite doctor``: what this device offers the runtime, in one readable report.

Each probe reports what it found and, when something is missing, what to install; none raises.
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import importlib.util
import platform
from pathlib import Path

from affectlite.models.card import ModelCard

MODELS_DIR = Path(__file__).resolve().parent / "models"


def interpreter_line() -> str:
    from affectlite.runtime.interpreter import interpreter_backend

    try:
        name, version = interpreter_backend()
        return f"{name} {version}"
    except RuntimeError as exc:
        return f"MISSING - {exc}"


def edgetpu_line() -> str:
    from affectlite.runtime.edgetpu import load_edgetpu_delegate, library_name

    try:
        name = library_name()
        ctypes.CDLL(name)
    except OSError as exc:
        return f"runtime library not found ({exc}); install the Edge TPU runtime for a Coral (README: Coral)"
    try:
        load_edgetpu_delegate()
        return f"{name} loaded, an Edge TPU answered"
    except (OSError, ValueError) as exc:
        return f"{name} present, but {exc}"


def cameras() -> list[str]:
    found = []
    for device in sorted(glob.glob("/dev/video*")):
        name_file = Path("/sys/class/video4linux") / Path(device).name / "name"
        name = name_file.read_text().strip() if name_file.exists() else "?"
        found.append(f"{device} ({name})")
    if importlib.util.find_spec("picamera2") is not None:   # the Raspberry Pi camera stack
        found.append("picamera2 installed")
    return found


def microphones() -> list[str]:
    try:
        import pyaudio
    except ImportError:
        cards = Path("/proc/asound/cards")
        listing = [line.strip() for line in cards.read_text().splitlines() if line.strip()] if cards.exists() else []
        return [f"ALSA: {line}" for line in listing] + ["pyaudio not installed: microphone capture needs it"]
    audio = pyaudio.PyAudio()
    try:
        return [f"{info['index']}: {info['name']} ({int(info['maxInputChannels'])} ch)"
                for info in (audio.get_device_info_by_index(i) for i in range(audio.get_device_count()))
                if info.get("maxInputChannels", 0) > 0]
    finally:
        audio.terminate()


def bundled_models() -> list[str]:
    lines = []
    for model in sorted(MODELS_DIR.glob("*.tflite")):
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        card_file = model.with_suffix(".json")
        if card_file.exists():
            expected = ModelCard.load(card_file).sha256
            status = "ok" if expected == digest else f"CHECKSUM MISMATCH (card says {expected[:12]}...)"
        else:
            status = "no card"
        lines.append(f"{model.name} {model.stat().st_size // 1024} KiB sha256 {digest[:16]}... {status}")
    return lines


def configuration_lines(path: Path) -> tuple[list[str], bool]:
    """What ``affectlite run --config path`` would meet: the models where they will run, the broker.

    Returns the lines and whether the service can start; it loads the models for real (a Coral
    configuration is confirmed only when its compiled model runs on the Edge TPU).
    """
    import socket

    from affectlite import config as configuration
    from affectlite.classifiers.expression import ExpressionClassifier

    try:
        config = configuration.load(path)
    except (ValueError, OSError) as exc:
        return [f"PROBLEM: {exc}"], False
    lines, ok = [f"{path}: valid"], True
    r = config["recognizer"]
    try:
        classifier = ExpressionClassifier(r["model"] or None, r["threads"], r["edgetpu"], r["edgetpu_device"] or None)
        where = "Edge TPU" if classifier.placement.on_edgetpu else "CPU"
        lines.append(f"expression model: {classifier.placement.model.name} on the {where} ({classifier.placement.reason})")
        classifier.close()
    except (ValueError, OSError, RuntimeError) as exc:
        lines.append(f"PROBLEM: expression model: {exc}")
        ok = False
    if config["audio"]["enabled"]:
        from affectlite.classifiers.speech import SpeechClassifier

        try:
            SpeechClassifier(config["audio"]["model"] or None, r["threads"])
            lines.append("speech model: loads")
        except (ValueError, OSError, RuntimeError) as exc:
            lines.append(f"PROBLEM: speech model: {exc}")
            ok = False
    if config["fusion"]["model"]:
        from affectlite.fusion.sequence import STEP_SECONDS, SequenceFusion

        try:
            fusion = SequenceFusion(config["fusion"]["model"], r["threads"])
            lines.append(f"fusion model: {fusion.card.name}, {fusion.steps} steps of {STEP_SECONDS} s")
        except (ValueError, OSError, RuntimeError) as exc:
            lines.append(f"PROBLEM: fusion model: {exc}")
            ok = False
    mqtt = config["mqtt"]
    if mqtt["enabled"]:
        target = f"{mqtt['host']}:{mqtt['port']}"
        try:
            socket.create_connection((mqtt["host"], mqtt["port"]), timeout=2).close()
            lines.append(f"MQTT broker {target}: reachable, topics under {mqtt['prefix']}/{mqtt['device_id']}/")
        except OSError as exc:
            # Not fatal: the service starts and queues events until the broker answers.
            lines.append(f"MQTT broker {target}: not reachable ({exc}); events will queue "
                         f"(up to {mqtt['queue_max_messages']}) until it is")
    return lines, ok


def report(config: Path | None = None) -> tuple[str, bool]:
    """The report text, and False when the given configuration cannot run."""
    sections = [
        ("system", [f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"]),
        ("interpreter", [interpreter_line()]),
        ("Edge TPU", [edgetpu_line()]),
        ("cameras", cameras() or ["none found (/dev/video* empty, no picamera2)"]),
        ("microphones", microphones() or ["none found"]),
        ("bundled models", bundled_models() or ["none"]),
    ]
    ok = True
    if config is not None:
        lines, ok = configuration_lines(config)
        sections.append(("configuration", lines))
    return "\n".join(f"{title}:\n" + "\n".join(f"  {line}" for line in lines) for title, lines in sections), ok
