"""affectlite: emotion recognition on this device - analyse photos and videos, run the live service.

Each input file is processed on its own: a file that fails gets one line on stderr and the
others still run; the exit status is 1 when any file failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from affectlite.samples import SAMPLE_CLIP
from affectlite.sources.images import IMAGE_SUFFIXES, MediaError

PROG = "affectlite"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (when it has a meaningful one); descriptions and
    examples keep their line breaks."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or default in (None, False, argparse.SUPPRESS, []) or not action.option_strings
                or action.nargs == 0):
            return text
        return f"{text} (default: %(default)s)"


def examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def verbose_option() -> argparse.ArgumentParser:
    """A parent parser giving a subcommand ``--verbose``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--verbose", action="store_true",
                        help="also show the native libraries' log lines (TensorFlow, TFLite)")
    return parent


def set_verbosity(args) -> None:
    if getattr(args, "verbose", False):
        import os

        from affectlite.runtime.quiet import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"


def build_parser() -> argparse.ArgumentParser:
    from affectlite import __version__

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0], formatter_class=HelpFormatter,
                                     epilog=examples("affectlite analyze                      # the bundled sample clip",
                                                     "affectlite analyze photos/ clip.mp4 --fps 5 -o faces.jsonl",
                                                     "affectlite run --config /etc/affectlite/config.toml",
                                                     "affectlite doctor --config my.toml"))
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = [verbose_option()]
    from affectlite.recognizer import RecognizerOptions       # its defaults are the options' defaults

    analyze = sub.add_parser("analyze", help="faces and expressions in photos and videos", formatter_class=HelpFormatter,
                             parents=common,
                             description="One record per face per frame (JSON Lines or CSV).",
                             epilog=examples("affectlite analyze photo.jpg clip.mp4 --fps 5 --annotate out/ > faces.jsonl",
                                             "affectlite analyze photos/ --format csv -o faces.csv",
                                             "affectlite analyze clip.mp4 --every 3 --no-audio"))
    analyze.add_argument("inputs", nargs="*", type=Path,
                         help="images, videos and folders of them (default: the bundled CREMA-D sample clip)")
    analyze.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="output format")
    analyze.add_argument("--output", "-o", type=Path, help="write results here instead of stdout")
    analyze.add_argument("--annotate", type=Path,
                         help="write annotated copies: a file for one input, a folder for several")
    sampling = analyze.add_mutually_exclusive_group()
    sampling.add_argument("--every", type=int, default=1, help="analyse every N-th video frame")
    sampling.add_argument("--fps", type=float, help="analyse about F video frames per second")
    analyze.add_argument("--model", type=Path, help="expression model .tflite (default: the bundled int8 model)")
    analyze.add_argument("--detector", choices=["short", "full"], default="short",
                         help="BlazeFace range: short (within ~2 m) or full (up to ~5 m)")
    analyze.add_argument("--min-score", type=float, default=0.5, help="face detection threshold")
    analyze.add_argument("--detect-every", type=int, metavar="N",
                         help="videos: run the face detector on every N-th analysed frame and follow the faces in "
                              f"between (1: detect on every frame; default: {RecognizerOptions.detect_every}, "
                              "1 with --every or --fps)")
    analyze.add_argument("--classify-every", type=int, metavar="N",
                         help="videos: classify each tracked face on about every N-th analysed frame and repeat its "
                              f"last result in between (1: classify on every frame; default: "
                              f"{RecognizerOptions.classify_every}, 1 with --every or --fps)")
    analyze.add_argument("--threads", type=int, default=1, help="interpreter threads")
    analyze.add_argument("--edgetpu", choices=["off", "auto", "required"], default="off",
                         help="run the expression model on a Coral Edge TPU")
    analyze.add_argument("--edgetpu-device", help="usb, usb:N, pci, pci:N")
    analyze.add_argument("--no-audio", action="store_true",
                         help="ignore videos' sound tracks (default: analyse speech when there is a track)")
    analyze.add_argument("--voice-min-confidence", type=float, default=RecognizerOptions.voice_min_confidence,
                         help="a voice less sure than this counts as none, as [audio] min_confidence "
                              "(default: %(default)s)")
    analyze.add_argument("--explain", action="store_true",
                         help="with --annotate: also write each face's occlusion heat map over the picture "
                              "(*_explain.png / .mp4 beside the annotated file; about 70 ms per face)")
    analyze.add_argument("--audience", action="store_true",
                         help="videos: instead of a record per face, one audience summary per video: people in "
                              "view, dwell, who looked and for how long, viewers' expressions (docs/audience.md)")
    analyze.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                         help="progress bar for videos (default: when stderr is a terminal)")

    run = sub.add_parser("run", help="the live service: camera to emotion states, events and MQTT",
                         formatter_class=HelpFormatter, parents=common,
                         epilog=examples("affectlite run                                 # sample clip as a camera, MQTT on localhost",
                                         "affectlite run --config firmware_configs/raspberry-pi-4.toml",
                                         "affectlite run --config my.toml --print-config"))
    run.add_argument("--config", type=Path, help="TOML configuration (default: built-in defaults, sample clip)")
    run.add_argument("--print-config", action="store_true", help="print the effective configuration and exit")
    run.add_argument("--duration", type=float, help="stop after this many seconds")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                     help="how much the service logs")

    doctor = sub.add_parser("doctor", help="interpreter, Edge TPU, cameras, microphones, bundled models",
                            formatter_class=HelpFormatter, parents=common,
                            epilog=examples("affectlite doctor", "affectlite doctor --config /etc/affectlite/config.toml --json"))
    doctor.add_argument("--config", type=Path,
                        help="also try this configuration as `run` would: open its camera (or file) and microphone, "
                             "load its models where they will run, connect to its broker; exit 1 if it cannot run")
    doctor.add_argument("--json", action="store_true", help="the report as JSON (ok, problems, sections)")

    user = sub.add_parser("broker-user", help="add a user to the shipped broker's password files, named so that "
                                              "no two logins can collide", formatter_class=HelpFormatter, parents=common,
                          epilog=examples("sudo affectlite broker-user kiosk kiosk.lobby",
                                          "sudo affectlite broker-user automation homeassistant",
                                          "sudo affectlite broker-user device lobby --password-env LOBBY_PASSWORD"))
    user.add_argument("role", choices=["device", "kiosk", "automation"],
                      help="device: named as its mqtt.device_id; kiosk: a screen, a dot in its name; automation: "
                           "Home Assistant, Node-RED")
    user.add_argument("name", help="the user name")
    user.add_argument("--dir", type=Path, default=Path("/etc/mosquitto"), help="where the password files are")
    user.add_argument("--password-env", help="environment variable holding the password (default: one is made "
                                             "and printed once)")

    fleet = sub.add_parser("fleet", help="many devices: a live table of every device on a broker, and their history",
                           formatter_class=HelpFormatter, parents=common,
                           epilog=examples("affectlite fleet watch --host central.lan --user fleet --db fleet.sqlite3",
                                           "affectlite fleet watch --db postgresql://fleet@db/affectlite",
                                           "affectlite fleet report alerts --db fleet.sqlite3 > alerts.csv"))
    fleet_sub = fleet.add_subparsers(dest="fleet_command", required=True)
    watch = fleet_sub.add_parser("watch", help="follow every device: live table (JSON Lines when not a terminal), "
                                               "events, state changes and stats stored", formatter_class=HelpFormatter)
    watch.add_argument("--host", default="localhost", help="the broker: a site's, or a central one fed by site bridges")
    watch.add_argument("--port", type=int, default=1883, help="broker port")
    watch.add_argument("--user", default="", help="MQTT user name (e.g. fleet at a central broker)")
    watch.add_argument("--password-env", default="AFFECTLITE_FLEET_PASSWORD",
                       help="environment variable holding the password")
    watch.add_argument("--ca-file", default="", help="CA certificate (PEM) for a TLS broker")
    watch.add_argument("--client-id", default="affectlite-fleet",
                       help="MQTT client id of the persistent session: keep it to lose nothing across restarts")
    watch.add_argument("--db", default="~/.local/state/affectlite/fleet.sqlite3",
                       help="SQLite file, or a postgresql:// URL")
    watch.add_argument("--duration", type=float, help="stop after this many seconds")
    report = fleet_sub.add_parser("report", help="history as CSV: alerts per device per day, share of time per "
                                                 "emotion and valence, offline periods, lost events",
                                  formatter_class=HelpFormatter)
    report.add_argument("question", choices=["alerts", "emotions", "offline", "gaps", "audience"],
                        help="what to answer (gaps: events numbered by a device that never arrived; audience: "
                             "people in view, viewers and attention per device, content item and hour)")
    report.add_argument("--per", choices=["hour", "day"], default="hour", help="audience: the time bucket")
    report.add_argument("--db", default="~/.local/state/affectlite/fleet.sqlite3",
                        help="SQLite file, or a postgresql:// URL")
    return parser


def _annotation_target(base: Path | None, source: Path, several: bool) -> Path | None:
    """Where the annotated copy of ``source`` goes: ``base`` itself for one input named with a
    file suffix, else inside the folder ``base`` (created)."""
    if base is None:
        return None
    if several or base.is_dir() or not base.suffix:
        base.mkdir(parents=True, exist_ok=True)
        suffix = source.suffix if source.suffix.lower() in IMAGE_SUFFIXES else ".mp4"
        return base / f"{source.stem}_annotated{suffix}"
    return base


def _analyze_file(recognizer, path: Path, writer, args, annotate_to: Path | None) -> int:
    """Analyse one file; returns the number of face records written."""
    from affectlite.annotate import VideoWriter, draw, save_image
    from affectlite.explain import explain_frame

    explain_to = annotate_to.with_name(annotate_to.stem + "_explain" + annotate_to.suffix) \
        if annotate_to and args.explain else None
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if args.audience:
            raise MediaError(f"{path}: --audience summarises videos; this is a still image")
        from affectlite.sources.images import read_image

        rgb = read_image(path)
        faces = recognizer.analyze_image(rgb)
        writer.write(str(path), 0, None, faces)
        if annotate_to:
            save_image(draw(rgb, faces), annotate_to)
        if explain_to:
            save_image(draw(explain_frame(recognizer, rgb), faces), explain_to)
        return len(faces)

    from affectlite.sources.video_file import video_info

    if args.audience:
        return _audience_of_video(recognizer, path, writer.stream, args)
    info = video_info(path)
    total = info["frames"]
    if total and args.fps and info["fps"]:
        total = int(total * min(1.0, args.fps / info["fps"]))
    elif total:
        total = -(-total // args.every)
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    video_out = explain_out = None
    count = 0
    try:
        from tqdm import tqdm

        results = recognizer.analyze_video(path, every=args.every, fps=args.fps, keep_frames=annotate_to is not None,
                                           # voice and fusion speak the seven emotions only
                                           listen=not args.no_audio and recognizer.labels.is_emotions)
        for result in tqdm(results, total=total, disable=not show, unit="frame", desc=path.name, leave=False):
            writer.write(str(path), result.index, result.timestamp, result.faces, result)
            count += len(result.faces)
            rate = args.fps or (info["fps"] or 25) / args.every
            if annotate_to:
                if video_out is None:
                    video_out = VideoWriter(annotate_to, rate, result.rgb.shape[1], result.rgb.shape[0])
                video_out.write(draw(result.rgb, result.faces))
            if explain_to:
                if explain_out is None:
                    explain_out = VideoWriter(explain_to, rate, result.rgb.shape[1], result.rgb.shape[0])
                explain_out.write(draw(explain_frame(recognizer, result.rgb), result.faces))
    except BaseException:
        for out in (video_out, explain_out):
            if out is not None:
                out.discard()
        raise
    for out in (video_out, explain_out):
        if out is not None:
            out.close()
    return count


def _audience_of_video(recognizer, path: Path, stream, args) -> int:
    """One JSON line: the audience summary of a whole video (affectlite.audience)."""
    import json

    from affectlite.audience import AudienceTally, Seen

    tally, last, frames = AudienceTally(), 0.0, 0
    for result in recognizer.analyze_video(path, every=args.every, fps=args.fps):
        tally.update(result.timestamp, [Seen(f.track_id, f.head, f.emotion, f.valence) for f in result.faces])
        last, frames = result.timestamp, frames + 1
    tally.everyone_left()
    summary = tally.summary(last)
    stream.write(json.dumps({"file": str(path), "frames": frames, "audience": summary}) + "\n")
    stream.flush()
    return summary["ots"]


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; a folder becomes the images and videos in it and below, sorted. A folder
    with none is an error naming it."""
    from affectlite.sources.video_file import VIDEO_SUFFIXES

    expanded = []
    for path in paths:
        if path.is_dir():
            # hidden files and folders (.DS_Store, ._photo.jpg, .thumbnails/) are not the user's media
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise ValueError(f"{path}: no images or videos in this folder "
                                 f"({', '.join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))})")
            expanded += found
        else:
            expanded.append(path)
    return expanded


def _given_or(value, default):
    return default if value is None else value


def _analyze(args) -> int:
    from affectlite.output import ResultWriter
    from affectlite.recognizer import EmotionRecognizer, RecognizerOptions

    inputs = expand_inputs(args.inputs or [SAMPLE_CLIP])
    if args.every < 1:
        raise ValueError(f"--every must be >= 1, got {args.every}")
    if args.fps is not None and not 0 < args.fps <= 1000:
        raise ValueError(f"--fps must be a number above 0 (and at most 1000), got {args.fps}")
    if args.audience and (args.annotate or args.explain or args.format != "jsonl"):
        raise ValueError("--audience writes one JSON summary per video: leave out --annotate, --explain and --format")
    if args.explain and args.annotate is None:
        raise ValueError("--explain writes its heat maps beside the annotated output: add --annotate FILE_OR_FOLDER")
    # Following faces and repeating results suit consecutive frames; sampled frames are far apart,
    # so each one is detected and classified afresh unless asked otherwise.
    sampled = args.every > 1 or args.fps is not None
    options = RecognizerOptions(expression_model=args.model, detector=args.detector, min_face_score=args.min_score,
                                num_threads=args.threads, edgetpu=args.edgetpu, edgetpu_device=args.edgetpu_device,
                                detect_every=_given_or(args.detect_every, 1 if sampled else RecognizerOptions.detect_every),
                                classify_every=_given_or(args.classify_every,
                                                         1 if sampled else RecognizerOptions.classify_every),
                                voice_min_confidence=args.voice_min_confidence)
    failed = 0
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
    stream = open(args.output, "w", newline="") if args.output else sys.stdout
    try:
        with EmotionRecognizer(options) as recognizer:
            writer = ResultWriter(stream, args.format, recognizer.labels)
            for path in inputs:
                try:
                    _analyze_file(recognizer, path, writer, args, _annotation_target(args.annotate, path, len(inputs) > 1))
                except MediaError as exc:
                    failed += 1
                    print(f"{PROG}: error: {exc}", file=sys.stderr)
    finally:
        if stream is not sys.stdout:
            stream.close()
    if failed:
        print(f"{PROG}: {failed} of {len(inputs)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


def _run(args) -> int:
    import logging
    import signal

    from affectlite import config as configuration
    from affectlite.service import Service

    config = configuration.load(args.config)
    if args.print_config:
        print(configuration.to_toml(config), end="")
        return 0
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = Service(config)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: service.stop())
    mqtt = config["mqtt"]
    if mqtt["enabled"]:
        # With MQTT, stdout carries no results: say where they go (without MQTT it is JSON Lines).
        print(f"{PROG}: {service.source.name} -> mqtt://{mqtt['host']}:{mqtt['port']} as "
              f"{service.sink.topic('')}...; events wait in {service.sink.outbox.path} while the broker is away "
              "(Ctrl-C stops)", flush=True)
    counters = service.run(args.duration)
    logging.getLogger(PROG).info("stopped: %d frames analysed, %d events", counters.analysed, counters.events)
    if mqtt["enabled"]:
        waiting = counters.undelivered
        reason = f" ({service.sink.last_error})" if waiting and service.sink.last_error else ""
        print(f"{PROG}: stopped: {counters.analysed} frames analysed, {counters.events} events; "
              + (f"{waiting} wait for the broker{reason} and go out on the next run" if waiting
                 else "all delivered"), flush=True)
    return 0


def _doctor(args) -> int:
    from affectlite.doctor import report, sections

    if args.json:
        import json

        found, ok = sections(args.config)
        problems = [line for lines in found.values() for line in lines if line.startswith("PROBLEM")]
        print(json.dumps({"ok": ok, "problems": problems, "sections": found}, indent=2))
        return 0 if ok else 1
    text, ok = report(args.config)
    print(text)
    return 0 if ok else 1


def _broker_user(args) -> int:
    import os

    from affectlite.broker_users import ROLES, add_user

    given = os.environ.get(args.password_env) if args.password_env else None
    if args.password_env and not given:
        raise ValueError(f"--password-env {args.password_env}: that variable is not set")
    password = add_user(args.dir, args.role, args.name, given)
    print(f"{args.role} user {args.name!r} added to {args.dir / ROLES[args.role][0]}"
          + ("" if given else f"; its password (shown once): {password}")
          + "; restart Mosquitto to load it (systemctl restart mosquitto)")
    return 0


def _fleet(args) -> int:
    import csv
    import logging
    import os
    import signal

    from affectlite.fleet.store import open_store

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = open_store(args.db)
    try:
        if args.fleet_command == "report":
            from affectlite.fleet.reports import REPORTS

            answer = REPORTS[args.question]
            rows = answer(store, per=args.per) if args.question == "audience" else answer(store)
            csv.writer(sys.stdout).writerows(rows)
            return 0
        from affectlite.fleet.watch import BrokerOptions, FleetWatcher
        from affectlite.sinks.connection_check import check_pem

        problem = check_pem(args.ca_file, "--ca-file") if args.ca_file else ""
        if problem:
            raise ValueError(f"--ca-file: {problem}")

        watcher = FleetWatcher(BrokerOptions(args.host, args.port, args.user, os.environ.get(args.password_env, ""),
                                             args.ca_file, args.client_id), store)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: watcher.stop())
        watcher.run(args.duration)
        return 0
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_verbosity(args)
    try:
        return {"analyze": _analyze, "run": _run, "doctor": _doctor, "fleet": _fleet,
                "broker-user": _broker_user}[args.command](args)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"{PROG}: failed: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (e.g. `affectlite analyze | head`)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
