"""The six real CREMA-D audio-visual clips through the whole path: what comes out per clip.

For each clip: the label in its name, the face model's majority emotion over the frames, the
speech model's emotion over the voiced windows of its sound track, the late fusion of the
two clip-level means (each weighed by its model's measured reliability and its confidence; a
voice below [audio] min_confidence counts as none), and the bundled fusion LSTM (mean of its answers over every 2 s window of
0.25 s steps, the steps built as `train fusion --av-corpus` builds them).

    python benchmarks/crema_d_clips.py
    python benchmarks/crema_d_clips.py --fusion-model runs/fusion/fusion_int8.tflite   (another LSTM)
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np

from affectlite import EMOTIONS, EmotionRecognizer
from affectlite.classifiers.speech import DEFAULT_MIN_CONFIDENCE, SpeechClassifier
from affectlite.fusion.late import late_fusion, reliability_from_cards
from affectlite.fusion.sequence import SequenceFusion
from affectlite.sources.audio import read_video_audio
from affectlite_convert.data.av_corpus import clip_steps, sequences_from_steps

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "av" / "crema-d-sample" / "VideoFlash"
LABELS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fusion-model", default="bundled", help="the fusion LSTM (default: the bundled one)")
    args = parser.parse_args()
    print(f"{'clip':<22} {'label':<8} {'face (majority of frames)':<28} {'voice (mean of windows)':<26} {'fused':<8} "
          f"{'LSTM':<8}")
    hits = collections.Counter()
    lstm = SequenceFusion(args.fusion_model)
    with EmotionRecognizer() as recognizer, SpeechClassifier(min_confidence=DEFAULT_MIN_CONFIDENCE) as speech:
        reliability = reliability_from_cards(recognizer.classifier.card, speech.card)
        print(f"late fusion weights: reliability face {reliability.face:.3f}, voice {reliability.voice:.3f} "
              f"(from the model cards) x each one's confidence; voice below {DEFAULT_MIN_CONFIDENCE} counts as none\n")
        for clip in sorted(CLIPS.glob("*.flv")):
            label = LABELS[clip.stem.split("_")[2]]
            faces = [f for frame in recognizer.analyze_video(clip) for f in frame.faces]
            votes = collections.Counter(f.emotion for f in faces)
            face_mean = np.mean([[f.probabilities[e] for e in EMOTIONS] for f in faces], axis=0)
            voice_mean, windows, _ = speech.classify(read_video_audio(clip))
            fused = late_fusion(face_mean, voice_mean, reliability)
            face_top, n = votes.most_common(1)[0]
            voice_top = (EMOTIONS[int(np.argmax(voice_mean))] if voice_mean is not None
                         else "unsure" if len(windows) else "no speech")
            fused_top = EMOTIONS[int(np.argmax(fused))]
            windows_of_steps = sequences_from_steps(clip_steps(clip, recognizer, speech), lstm.steps, 1)
            lstm_top = EMOTIONS[int(np.argmax(np.mean([lstm.predict(w) for w in windows_of_steps], axis=0)))]
            hits.update(face=face_top == label, voice=voice_top == label, fused=fused_top == label,
                        lstm=lstm_top == label)
            print(f"{clip.name:<22} {label:<8} {face_top + f' ({n}/{len(faces)})':<28} "
                  f"{voice_top + f' ({len(windows)} windows)':<26} {fused_top:<8} {lstm_top:<8}")
    print(f"correct of 6: face {hits['face']}, voice {hits['voice']}, fused {hits['fused']}, LSTM {hits['lstm']}")


if __name__ == "__main__":
    main()
