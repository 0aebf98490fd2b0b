"""The service's states, valence and alerts on the six real CREMA-D clips, as a person would judge them.

Each clip is replayed as a camera would deliver it (its own timestamps, looped to --seconds)
through the bundled expression model and the StateTracker with the given options. Per clip it
prints: the label, the majority label of the frames and how many frames say it, how long the
state took to settle on that majority (or "never"), the final state, valence changes, and the
alerts. The defaults of [states] and [alerts] are chosen from this table: the state settles on
the frames' majority within 3 s where the frames are mostly right; no alert on the neutral and
happy clips; an alert on the angry clip with negative_valence_s at its default.

    python benchmarks/states_on_clips.py
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

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "av" / "crema-d-sample" / "VideoFlash"
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
    args = parser.parse_args()

    with EmotionRecognizer(RecognizerOptions(detect_every=args.detect_every,
                                             classify_every=args.classify_every)) as recognizer:
        frames = clip_frames(recognizer)
    states = replace(defaults, min_confidence=args.min_confidence, hysteresis=args.hysteresis,
                     smoothing=args.smoothing, min_duration_s=args.min_duration)
    alerts = AlertOptions(negative_valence_s=args.negative_valence_s)
    print(f"states: {states}\nalerts: {alerts}\nclips looped for {args.seconds:g} s\n")
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


if __name__ == "__main__":
    main()
