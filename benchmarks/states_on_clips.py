"""The service's states, valence and alerts on labelled clips, as a person would judge them.

Each of the six real CREMA-D clips is replayed as a camera would deliver it (its own timestamps,
looped to --seconds) through the expression model and the StateTracker with the given options.
Per clip it prints: the label, the majority label of the frames and how many frames say it, how
long the state took to settle on that majority (or "never"), the final state, valence changes,
and the alerts. The defaults of [states] and [alerts] are chosen from this table: the state
settles on the frames' majority within 3 s where the frames are mostly right; no alert on the
neutral and happy clips.

With ``--composed N``, also clips composed from the shared data: for each label, N FER2013
PublicTest faces whose FER+ raters' majority is that label (drawn at random, seed 0), each
mirror-padded and enlarged to 240 px on a grey 480x360 canvas and held for 3 s at 15 frames/s with a slight drift,
as a person who keeps an expression in front of the camera. Each goes through the default video
path (detector, alignment, classifier, following) and a StateTracker; per label it prints how
many clips' frames mostly say the label and how many end in that state, or uncertain.

    python benchmarks/states_on_clips.py
    python benchmarks/states_on_clips.py --composed 20 --model runs/face/face_expression_int8.tflite
    python benchmarks/states_on_clips.py --min-confidence 0.5 --hysteresis 0.1 --grid
    python benchmarks/states_on_clips.py --detect-every 1 --classify-every 1   # against the defaults
"""

from __future__ import annotations

import argparse
import collections
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np

from affectlite import EMOTIONS, EmotionRecognizer, RecognizerOptions
from affectlite.states import AlertOptions, StateOptions, StateTracker

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CLIPS = SHARED / "av" / "crema-d-sample" / "VideoFlash"
FACES = SHARED / "faces"
LABELS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}


def clip_frames(recognizer: EmotionRecognizer) -> dict[str, tuple[list[float], list[np.ndarray]]]:
    """Per clip: frame timestamps and the face probabilities (the first face of each frame)."""
    found = {}
    for clip in sorted(CLIPS.glob("*.flv")):
        times, probs = [], []
        for frame in recognizer.analyze_video(clip):
            if frame.faces:
                times.append(frame.timestamp)
                probs.append(np.array([frame.faces[0].probabilities[e] for e in EMOTIONS]))
        found[clip.stem] = (times, probs)
    return found


def replay(times: list[float], probs: list[np.ndarray], states: StateOptions, alerts: AlertOptions,
           seconds: float) -> dict:
    """The clip looped for ``seconds`` through a StateTracker (as if the actor kept going)."""
    tracker = StateTracker(states, alerts, wall_clock=lambda: 0.0)
    length = times[-1] + (times[1] - times[0] if len(times) > 1 else 0.04)
    settled_at, valences, alert_times = {}, [], []
    for loop in itertools.count():
        offset = loop * length
        if offset >= seconds:
            break
        for t, p in zip(times, probs):
            now = offset + t
            for event in tracker.update(now, [(1, p)]):
                if event.type == "alert":
                    alert_times.append(round(now, 1))
            person = tracker.people[1]
            settled_at.setdefault(person.state, now)
            valences.append(person.valence)
    person = tracker.people[1]
    changes = sum(a != b for a, b in zip(valences, valences[1:]))
    return {"final": person.state, "settled_at": settled_at, "valence_changes": changes,
            "final_valence": person.valence, "alerts": alert_times}


def evaluate(frames, states: StateOptions, alerts: AlertOptions, seconds: float, show: bool) -> dict:
    score = collections.Counter()
    for name, (times, probs) in frames.items():
        label = LABELS[name.split("_")[2]]
        votes = collections.Counter(EMOTIONS[int(np.argmax(p))] for p in probs)
        majority, count = votes.most_common(1)[0]
        result = replay(times, probs, states, alerts, seconds)
        settle = result["settled_at"].get(majority)
        mostly_right = majority == label and count / len(probs) >= 0.5
        score["settles_within_3s"] += bool(settle is not None and settle <= 3.0)
        score["mostly_right_clips"] += mostly_right
        score["settled_when_mostly_right"] += bool(mostly_right and settle is not None and settle <= 3.0)
        score["false_alerts"] += bool(label in ("neutral", "happy") and result["alerts"])
        score["angry_alert"] += bool(label == "angry" and result["alerts"])
        score["valence_changes"] += result["valence_changes"]
        if show:
            print(f"{name:<18} {label:<8} {majority + f' {count}/{len(probs)}':<16} "
                  f"{('%.1f s' % settle) if settle is not None else 'never':>8}   {result['final']:<10} "
                  f"{result['final_valence']:<9} {result['valence_changes']:>3}   {result['alerts'] or '-'}")
    return score


def composed_faces(per_label: int) -> dict[str, list[np.ndarray]]:
    """Per label, ``per_label`` PublicTest faces whose raters' majority is that label, drawn at
    random (seed 0; the file is sorted by FER2013's own label, so its first rows are not typical)."""
    from affectlite_convert.data.faces import load_face_npz
    from affectlite_convert.data.ferplus import votes_for

    faces = load_face_npz(FACES / "fer2013_publictest.npz")
    majority = votes_for(FACES / "fer2013_publictest.npz", FACES / "ferplus_votes.npz", len(faces)).majority()
    rng = np.random.default_rng(0)
    picked = {}
    for k, label in enumerate(EMOTIONS):
        rows = np.flatnonzero(majority == k)
        picked[label] = [faces.x[i] for i in sorted(rng.choice(rows, min(per_label, len(rows)), replace=False))]
    return picked


def held_face_frames(face: np.ndarray, seconds: float = 3.0, fps: float = 15.0) -> list[np.ndarray]:
    """A grey face crop, its borders extended by mirroring (so that an aligned crop a little wider
    than FER2013's framing still sees a head, not a grey frame), enlarged to 240 px on a 480x360
    canvas and drifting a pixel a frame and back."""
    from PIL import Image

    padded = np.pad(face, 16, mode="symmetric")
    big = np.asarray(Image.fromarray(padded).resize((240, 240), Image.BICUBIC))
    frames = []
    for n in range(int(seconds * fps)):
        canvas = np.full((360, 480), 128, np.uint8)
        dx = (n % 8) - 4
        canvas[60:300, 120 + dx:360 + dx] = big
        frames.append(np.repeat(canvas[..., None], 3, axis=2))
    return frames


def composed_table(recognizer: EmotionRecognizer, per_label: int, states: StateOptions, alerts: AlertOptions,
                   fps: float = 15.0) -> None:
    print(f"\ncomposed clips: {per_label} FER+ PublicTest faces per label (raters' majority), each held 3 s")
    print(f"{'label':<9} {'found':>6} {'frames mostly right':>20} {'final state right':>18} {'uncertain':>10}  "
          "final states")
    totals = collections.Counter()
    for label, faces in composed_faces(per_label).items():
        row = collections.Counter()
        finals = collections.Counter()
        for face in faces:
            stream = recognizer.stream()
            tracker = StateTracker(states, alerts, wall_clock=lambda: 0.0)
            said = collections.Counter()
            track = None
            for n, frame in enumerate(held_face_frames(face, fps=fps)):
                found = recognizer.analyze_image(frame, stream)
                if found:
                    said[found[0].emotion] += 1
                    track = found[0].track_id
                tracker.update(n / fps, [(f.track_id, np.array([f.probabilities[e] for e in EMOTIONS]))
                                         for f in found[:1]])
            if track is None or track not in tracker.people:
                finals["(no face)"] += 1
                continue
            row["found"] += 1
            final = tracker.people[track].state
            finals[final] += 1
            row["frames_right"] += said.most_common(1)[0][0] == label and said[label] * 2 >= sum(said.values())
            row["state_right"] += final == label
            row["uncertain"] += final == "uncertain"
        totals.update(row)
        print(f"{label:<9} {row['found']:>3}/{len(faces):<2} {row['frames_right']:>20} {row['state_right']:>18} "
              f"{row['uncertain']:>10}  " + ", ".join(f"{k} {v}" for k, v in finals.most_common()))
    print(f"{'all':<9} {totals['found']:>6} {totals['frames_right']:>20} {totals['state_right']:>18} "
          f"{totals['uncertain']:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = StateOptions()
    parser.add_argument("--min-confidence", type=float, default=defaults.min_confidence)
    parser.add_argument("--hysteresis", type=float, default=defaults.hysteresis)
    parser.add_argument("--smoothing", type=float, default=defaults.smoothing)
    parser.add_argument("--min-duration", type=float, default=defaults.min_duration_s)
    parser.add_argument("--negative-valence-s", type=float, default=AlertOptions().negative_valence_s)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each clip is replayed (looped)")
    parser.add_argument("--detect-every", type=int, default=RecognizerOptions().detect_every,
                        help="run the face detector on every N-th frame (the runtime's default: %(default)s)")
    parser.add_argument("--classify-every", type=int, default=RecognizerOptions().classify_every,
                        help="classify each face on about every N-th frame (the runtime's default: %(default)s)")
    parser.add_argument("--grid", action="store_true", help="also try a grid of min_confidence and hysteresis")
    parser.add_argument("--model", type=Path, help="expression model .tflite with its card (default: the bundled one)")
    parser.add_argument("--composed", type=int, default=0, metavar="N",
                        help="also N composed clips per label from FER+ PublicTest faces (see above)")
    args = parser.parse_args()

    options = RecognizerOptions(expression_model=args.model, detect_every=args.detect_every,
                                classify_every=args.classify_every)
    with EmotionRecognizer(options) as recognizer:
        frames = clip_frames(recognizer)
    states = replace(defaults, min_confidence=args.min_confidence, hysteresis=args.hysteresis,
                     smoothing=args.smoothing, min_duration_s=args.min_duration)
    alerts = AlertOptions(negative_valence_s=args.negative_valence_s)
    print(f"model: {args.model or 'bundled'}\nstates: {states}\nalerts: {alerts}\nclips looped for {args.seconds:g} s\n")
    print(f"{'clip':<18} {'label':<8} {'frames say':<16} {'settled':>8}   {'final':<10} {'valence':<9} "
          f"{'chg':>3}   alerts at (s)")
    score = evaluate(frames, states, alerts, args.seconds, show=True)
    print(f"\nsettled within 3 s on the frames' majority: {score['settles_within_3s']} of 6 "
          f"({score['settled_when_mostly_right']} of the {score['mostly_right_clips']} clips whose frames are mostly "
          f"right); alerts on neutral/happy clips: {score['false_alerts']}; alert on the angry clip: "
          f"{'yes' if score['angry_alert'] else 'no'}; valence changes in all: {score['valence_changes']}")
    if args.grid:
        print("\nmin_confidence hysteresis  settled(mostly right)  false alerts  angry alert  valence changes")
        for confidence, hysteresis in itertools.product((0.3, 0.35, 0.4, 0.45, 0.5, 0.55), (0.05, 0.1, 0.15)):
            grid_states = replace(states, min_confidence=confidence, hysteresis=hysteresis)
            s = evaluate(frames, grid_states, alerts, args.seconds, show=False)
            print(f"{confidence:>14.2f} {hysteresis:>10.2f}  {s['settled_when_mostly_right']:>10} of "
                  f"{s['mostly_right_clips']:<9} {s['false_alerts']:>12} {'yes' if s['angry_alert'] else 'no':>12} "
                  f"{s['valence_changes']:>16}")
    if args.composed:
        with EmotionRecognizer(options) as recognizer:
            composed_table(recognizer, args.composed, states, alerts)


if __name__ == "__main__":
    main()
