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
        try:
            importlib.import_module("picamera2")   # imported, not opened: a camera in use stays untouched
        except ValueError as exc:                          # built against another numpy than this one
            from affectlite.sources.picamera import numpy_mismatch

            found.append(numpy_mismatch(exc))
        except ImportError as exc:
            found.append(f"picamera2 found but it does not import ({exc}); reinstall python3-picamera2 with apt")
        else:
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
    """What ``affectlite run --config path`` would meet, tried for real: the camera or file is
    opened and one frame read, the microphone opened, every model loaded where it will run, and
    the broker sent a CONNECT with the configured credentials.

    Returns the lines and whether the service can run; each thing that would stop it (or, like
    refused credentials, keep it from ever delivering) is a ``PROBLEM:`` line with its remedy.
    """
    from affectlite import config as configuration

    try:
        config = configuration.load(path)
    except (ValueError, OSError) as exc:
        return [f"PROBLEM: {exc}"], False
    lines = [f"{path}: valid"]
    for check in (_source_line, _microphone_line, _expression_line, _speech_line, _fusion_line, _broker_line,
                  _queue_line, _home_assistant_line):
        line = check(config)
        if line:
            lines.append(line)
    return lines, not any(line.startswith("PROBLEM") for line in lines)


def _source_line(config) -> str:
    from affectlite.sources.configured import make_source

    source = None
    try:
        source = make_source(config["source"])
        source.open()
        frame = source.read()
        if frame is None:
            return f"PROBLEM: source {source.name}: opened but delivered no frame; check the file or the camera"
        height, width = frame[0].shape[:2]
        return f"source {source.name}: opened, first frame {width}x{height}"
    except Exception as exc:  # any failure here is exactly what `run` would die of
        return f"PROBLEM: source ({config['source']['kind']}): {exc}"
    finally:
        if source is not None:
            try:
                source.close()
            except Exception:
                pass


def _microphone_line(config) -> str:
    if not config["audio"]["enabled"]:
        return ""
    from affectlite.sources.audio import Microphone

    device = config["audio"]["device"]
    microphone = Microphone(None if device < 0 else device)
    try:
        microphone.open()
    except Exception as exc:
        return f"PROBLEM: microphone: {exc} (or set [audio] enabled = false)"
    microphone.close()
    return "microphone: opened"


def _expression_line(config) -> str:
    from affectlite.classifiers.expression import ExpressionClassifier

    r = config["recognizer"]
    try:
        classifier = ExpressionClassifier(r["model"] or None, r["threads"], r["edgetpu"], r["edgetpu_device"] or None)
    except (ValueError, OSError, RuntimeError) as exc:
        return f"PROBLEM: expression model: {exc}"
    where = "Edge TPU" if classifier.placement.on_edgetpu else "CPU"
    classifier.close()
    return f"expression model: {classifier.placement.model.name} on the {where} ({classifier.placement.reason})"


def _speech_line(config) -> str:
    if not config["audio"]["enabled"]:
        return ""
    from affectlite.classifiers.speech import SpeechClassifier

    try:
        SpeechClassifier(config["audio"]["model"] or None, config["recognizer"]["threads"])
    except (ValueError, OSError, RuntimeError) as exc:
        return f"PROBLEM: speech model: {exc}"
    return "speech model: loads"


def _fusion_line(config) -> str:
    if not config["fusion"]["model"]:
        return ""
    from affectlite.fusion.sequence import STEP_SECONDS, SequenceFusion

    try:
        fusion = SequenceFusion(config["fusion"]["model"], config["recognizer"]["threads"])
    except (ValueError, OSError, RuntimeError) as exc:
        return f"PROBLEM: fusion model: {exc}"
    return f"fusion model: {fusion.card.name}, {fusion.steps} steps of {STEP_SECONDS} s"


def _queue_line(config) -> str:
    """Where undelivered events wait, and the room left there (a full card is the usual cause of
    a queue that cannot grow)."""
    import shutil

    mqtt = config["mqtt"]
    if not mqtt["enabled"]:
        return ""
    path = Path(mqtt["queue_path"]).expanduser()
    folder = next((p for p in (path.parent, *path.parents) if p.exists()), Path("/"))
    free_mb = shutil.disk_usage(folder).free / 1e6
    line = f"message queue: {path} ({free_mb:,.0f} MB free on that file system"
    # ~400 bytes an event, plus the write-ahead log's 1 MiB.
    needed_mb = mqtt["queue_max_messages"] * 400 / 1e6 + 1.1
    if free_mb < needed_mb:
        return (line + f"; WARNING: a full queue of {mqtt['queue_max_messages']} events needs about "
                f"{needed_mb:.0f} MB: when the disk fills, events are held in memory (up to 1,000) and then dropped)")
    return line + ")"


#: The first Home Assistant release that reads device-based discovery (homeassistant/device/...).
HOME_ASSISTANT_MINIMUM = "2024.12"


def _home_assistant_line(config) -> str:
    mqtt = config["mqtt"]
    if not (mqtt["enabled"] and mqtt["homeassistant"]):
        return ""
    if mqtt["discovery"] == "entities":
        return (f"Home Assistant: the device announces each entity on {mqtt['discovery_prefix']}/<platform>/"
                f"{mqtt['device_id']}/<entity>/config, which every Home Assistant version reads")
    return (f"Home Assistant: the device announces itself on {mqtt['discovery_prefix']}/device/{mqtt['device_id']}/"
            f"config, which Home Assistant {HOME_ASSISTANT_MINIMUM} or later reads (older versions create nothing "
            "and log one warning: set mqtt.discovery = \"entities\" for them)")


def _broker_line(config) -> str:
    mqtt = config["mqtt"]
    if not mqtt["enabled"]:
        return ""
    from affectlite.sinks.mqtt import probe_broker

    target = f"{mqtt['host']}:{mqtt['port']}"
    result, reason = probe_broker(mqtt)
    if result == "delivers":
        return (f"MQTT broker {target}: reachable, connection accepted, delivers under "
                f"{mqtt['prefix']}/{mqtt['device_id']}/")
    if result == "drops":
        return (f"PROBLEM: MQTT broker {target} accepts but drops this device's messages ({reason}); with the "
                "shipped broker configuration mqtt.username must equal mqtt.device_id")
    if result == "refused":
        return (f"PROBLEM: MQTT broker {target} refused the connection ({reason}): check mqtt.username and "
                "mqtt.password (the service would retry forever and deliver nothing)")
    # Not fatal: the service starts and queues events until the broker answers.
    return (f"MQTT broker {target}: not reachable ({reason}); events will queue "
            f"(up to {mqtt['queue_max_messages']}) until it is")


def sections(config: Path | None = None) -> tuple[dict[str, list[str]], bool]:
    """Each section's lines, and False when the given configuration cannot run."""
    found = dict([
        ("system", [f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"]),
        ("interpreter", [interpreter_line()]),
        ("Edge TPU", [edgetpu_line()]),
        ("cameras", cameras() or ["none found (/dev/video* empty, no picamera2)"]),
        ("microphones", microphones() or ["none found"]),
        ("bundled models", bundled_models() or ["none"]),
    ])
    ok = True
    if config is not None:
        found["configuration"], ok = configuration_lines(config)
    return found, ok


def report(config: Path | None = None) -> tuple[str, bool]:
    """The report text, and False when the given configuration cannot run."""
    found, ok = sections(config)
    return "\n".join(f"{title}:\n" + "\n".join(f"  {line}" for line in lines) for title, lines in found.items()), ok
