"""Faces and their expressions in images and videos: the runtime's main entry point.

    from affectlite import EmotionRecognizer, RecognizerOptions

    with EmotionRecognizer(RecognizerOptions(detector="short")) as recognizer:
        for face in recognizer.analyze_image(rgb):
            print(face.emotion, face.valence, face.box)
        for frame in recognizer.analyze_video("clip.mp4", fps=5):
            for face in frame.faces:
                print(frame.timestamp, face.track_id, face.emotion)

Videos and cameras keep a :class:`FaceStream` between frames (``recognizer.stream()``): track ids,
faces followed between detections (``detect_every``), and each face's last expression, repeated
on the frames where it is not classified (``classify_every``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from affectlite.classifiers.cadence import ClassifyCadence
from affectlite.classifiers.speech import DEFAULT_MIN_CONFIDENCE as DEFAULT_VOICE_MIN_CONFIDENCE
from affectlite.classifiers.expression import ExpressionClassifier
from affectlite.faces.align import AlignOptions, aligned_crop
from affectlite.faces.blazeface import BlazeFaceDetector, Face
from affectlite.faces.follow import FaceFollower, FollowOptions
from affectlite.fusion.late import late_fusion
from affectlite.labels import EMOTIONS, LabelSet, Valence
from affectlite.runtime.edgetpu import MODES, EdgeTpuMode
from affectlite.sources.images import as_rgb
from affectlite.sources.video_file import read_video
from affectlite.tracker import IouTracker


@dataclass
class RecognizerOptions:
    """Everything that configures an :class:`EmotionRecognizer`; checked when it is built."""

    #: The expression model (a ``.tflite`` with its card); None for the bundled int8 model.
    expression_model: str | Path | None = None
    #: BlazeFace variant: "short" for faces within ~2 m (webcams, kiosks), "full" up to ~5 m.
    detector: Literal["short", "full"] = "short"
    min_face_score: float = 0.5
    #: Faces smaller than this (pixels, box side) are skipped: too few pixels to read an expression.
    min_face_size: int = 24
    max_faces: int = 10
    num_threads: int = 1
    edgetpu: EdgeTpuMode = "off"
    edgetpu_device: str | None = None
    align: AlignOptions = field(default_factory=AlignOptions)
    #: Videos and cameras: run the face detector on every N-th frame and follow the faces in
    #: between (a face that changes a lot is detected again at once).
    detect_every: int = 4
    #: Videos and cameras: classify each tracked face on about every N-th frame and repeat its
    #: last result in between; a new face is classified at once (see
    #: :mod:`affectlite.classifiers.cadence`). Both defaults are measured on the six CREMA-D
    #: clips against detecting and classifying every frame: no face lost; the states, valence and
    #: alerts unchanged for every pair tried up to (4, 4) and (5, 3), while (6, 3) loses an alert;
    #: a third of the time per frame for one face (benchmarks/states_on_clips.py,
    #: crowd_frames.py, frame_pipeline.py; docs/models.md, "Speed").
    classify_every: int = 4
    #: The speech model used by ``analyze_video(listen=True)``; None for the bundled one.
    speech_model: str | Path | None = None
    #: A voice less sure than this counts as none, as ``[audio] min_confidence`` in the service.
    voice_min_confidence: float = DEFAULT_VOICE_MIN_CONFIDENCE

    def validate(self) -> None:
        if self.detector not in ("short", "full"):
            raise ValueError(f"detector must be 'short' or 'full', got {self.detector!r}")
        if not 0 < self.min_face_score < 1:
            raise ValueError(f"min_face_score must be in (0, 1), got {self.min_face_score}")
        for name in ("max_faces", "min_face_size", "num_threads", "detect_every", "classify_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.edgetpu not in MODES:
            raise ValueError(f"edgetpu must be one of {MODES}, got {self.edgetpu!r}")
        if not 0 <= self.voice_min_confidence <= 1:
            raise ValueError(f"voice_min_confidence must be in [0, 1], got {self.voice_min_confidence}")


@dataclass(frozen=True)
class FaceEmotion:
    """One face: where it is, how sure the detector is, and what it expresses."""

    box: tuple[float, float, float, float]        # x0, y0, x1, y1 in pixels
    score: float                                  # detection confidence
    probabilities: dict[str, float]               # over the model's labels (EMOTIONS by default), summing to ~1
    emotion: str                                  # the most probable label
    valence: Valence
    track_id: int | None = None                   # videos only: the same face keeps its id
    #: The detector's six keypoints (eyes, nose tip, mouth, ear tragions), frame pixels; kept for
    #: :attr:`head`, never serialised.
    keypoints: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def head(self):
        """Which way the head is turned (:class:`affectlite.audience.HeadPose`), computed when asked."""
        if self.keypoints is None:
            return None
        from affectlite.audience.head_pose import head_pose

        return head_pose(self.keypoints, self.box)

    def as_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "keypoints"}
        data["box"] = [round(v, 1) for v in self.box]
        data["score"] = round(self.score, 4)
        data["probabilities"] = {k: round(v, 4) for k, v in self.probabilities.items()}
        return data


@dataclass(frozen=True)
class FrameResult:
    index: int
    timestamp: float
    faces: list[FaceEmotion]
    rgb: np.ndarray | None = field(default=None, repr=False, compare=False)  # kept only when asked for
    #: With ``listen=True`` and a sound track: the voice over the 2 s windows covering this frame
    #: (None while nobody speaks or the voice is unsure), and each face's fused probabilities.
    listened: bool = False
    voice: dict[str, float] | None = None
    fused: list[dict[str, float]] | None = None


@dataclass
class FaceStream:
    """What one video or camera remembers between frames: track ids, where the faces were at the
    last detection, and each face's last expression. Make one with :meth:`EmotionRecognizer.stream`."""

    tracker: IouTracker
    follower: FaceFollower
    cadence: ClassifyCadence


class EmotionRecognizer:
    """Detector + aligner + expression classifier. Close it (or use ``with``) to free the models."""

    def __init__(self, options: RecognizerOptions | None = None):
        self.options = options or RecognizerOptions()
        self.options.validate()
        self.classifier = ExpressionClassifier(self.options.expression_model, self.options.num_threads,
                                               self.options.edgetpu, self.options.edgetpu_device)
        self.detector = BlazeFaceDetector(self.options.detector, self.options.min_face_score,
                                          num_threads=self.options.num_threads)
        self._speech = None                    # loaded on the first video listened to
        self._reliability = None

    @classmethod
    def create_from_options(cls, options: RecognizerOptions) -> "EmotionRecognizer":
        return cls(options)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Every usable face, largest first (too small ones and those beyond ``max_faces`` left out)."""
        faces = [f for f in self.detector.detect(rgb) if min(f.width, f.height) >= self.options.min_face_size]
        return sorted(faces, key=lambda f: f.width * f.height, reverse=True)[: self.options.max_faces]

    def face_crops(self, rgb: np.ndarray, size: int | None = None,
                   channels: int | None = None) -> list[tuple[Face, np.ndarray]]:
        """Every usable face, largest first, with its aligned crop (by default as the expression
        model takes it; another model's size and channels for tools such as explanations)."""
        return [(face, self._crop(rgb, face, size, channels)) for face in self.detect(rgb)]

    def _crop(self, rgb: np.ndarray, face: Face, size: int | None = None, channels: int | None = None) -> np.ndarray:
        return aligned_crop(rgb, face, size or self.classifier.input_size[0], channels or self.classifier.channels,
                            self.options.align)

    def stream(self, tracker: IouTracker | None = None) -> FaceStream:
        """The memory for one video or camera, with the options' ``detect_every`` and ``classify_every``."""
        return FaceStream(tracker or IouTracker(), FaceFollower(self.detect, FollowOptions(self.options.detect_every)),
                          ClassifyCadence(self.options.classify_every))

    def analyze_image(self, image, stream: FaceStream | None = None) -> list[FaceEmotion]:
        """Every face in an image, largest first; an image without faces gives []. ``image``: a
        path, a PIL image, or an RGB (or grayscale, RGBA) uint8 array. For the frames of one video
        or camera, pass its ``stream``: faces keep track ids, the detector runs on some frames only
        and each face is classified on some frames only."""
        rgb = image if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 \
            and image.dtype == np.uint8 else as_rgb(image)
        if stream is None:
            faces = self.detect(rgb)
            track_ids: list[int | None] = [None] * len(faces)
            all_probs = list(self.classifier.classify_many([self._crop(rgb, face) for face in faces]))
        else:
            faces = stream.follower.faces(rgb)
            track_ids = stream.tracker.update([f.box for f in faces])
            all_probs = stream.cadence.results(track_ids, lambda due: self.classifier.classify_many(
                [self._crop(rgb, faces[i]) for i in due]))
        results = []
        labels = self.labels
        for face, track_id, probs in zip(faces, track_ids, all_probs):
            emotion = labels.top(probs)
            results.append(FaceEmotion(
                box=face.box, score=face.score, probabilities=labels.as_dict(probs),
                emotion=emotion, valence=labels.valence[emotion], track_id=track_id, keypoints=face.keypoints,
            ))
        return results

    @property
    def labels(self) -> LabelSet:
        """The classes the expression model answers in: the seven emotions, or its card's own."""
        return self.classifier.labels

    def analyze_video(self, path: str | Path, every: int = 1, fps: float | None = None,
                      keep_frames: bool = False, listen: bool = False) -> Iterator[FrameResult]:
        """Results frame by frame, with track ids that follow each face across frames. With
        ``listen``, a video with a sound track is also listened to: each result carries the
        voice and each face's fused result (face and voice weighed by their models' measured
        reliability and their confidence)."""
        if listen and not self.labels.is_emotions:
            raise ValueError(f"listen=True fuses face and voice over the seven emotions; this expression model "
                             f"answers in {list(self.labels.names)}")
        voice_at = self._voice_timeline(path) if listen else None
        stream = self.stream()
        for frame in read_video(path, every=every, fps=fps):
            faces = self.analyze_image(frame.rgb, stream)
            kept = frame.rgb if keep_frames else None
            if voice_at is None:
                yield FrameResult(frame.index, frame.timestamp, faces, kept)
                continue
            voice = voice_at(frame.timestamp)
            fused = [late_fusion(np.array([f.probabilities[e] for e in EMOTIONS]), voice, self._reliability)
                     for f in faces]
            yield FrameResult(frame.index, frame.timestamp, faces, kept, True,
                              None if voice is None else _as_dict(voice), [_as_dict(p) for p in fused])

    def analyze_stream(self, source, max_fps: float | None = None) -> Iterator[FrameResult]:
        """A live loop over a camera (or any frame source): the newest frame each time, older ones
        dropped rather than queued, so results stay current however slow the analysis is.

            from affectlite.sources.webcam import WebcamSource

            for result in recognizer.analyze_stream(WebcamSource("/dev/video0")):
                print([face.emotion for face in result.faces])

        Stops when the source ends (a file) or when the caller stops iterating."""
        import time

        from affectlite.capture import LatestFrame

        capture = LatestFrame(source).start()
        stream = self.stream()
        interval = 1.0 / max_fps if max_fps else 0.0
        next_due = 0.0
        try:
            while True:
                frame = capture.get(timeout=1.0)
                if frame is None:
                    if capture.ended:
                        if capture.error is not None:
                            raise capture.error
                        return
                    continue
                if time.monotonic() < next_due:
                    continue
                next_due = time.monotonic() + interval
                yield FrameResult(frame.number, frame.captured_at, self.analyze_image(frame.rgb, stream))
        finally:
            capture.stop()

    def _voice_timeline(self, path: str | Path):
        """A function from a timestamp to the voice there, or None for a video without sound or
        without a speech model installed."""
        from affectlite.classifiers.speech import BUNDLED_MODEL, SpeechClassifier
        from affectlite.fusion.late import reliability_from_cards
        from affectlite.sources.audio import read_video_audio

        model = self.options.speech_model or BUNDLED_MODEL
        if not Path(model).exists():
            return None
        audio = read_video_audio(path)
        if audio is None or len(audio) == 0:
            return None
        if self._speech is None:
            self._speech = SpeechClassifier(model, self.options.num_threads, self.options.voice_min_confidence)
            self._reliability = reliability_from_cards(self.classifier.card, self._speech.card)
        return self._speech.timeline(audio)

    def close(self) -> None:
        self.classifier.close()
        self.detector.close()
        if self._speech is not None:
            self._speech.close()

    def __enter__(self) -> "EmotionRecognizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _as_dict(probs: np.ndarray) -> dict[str, float]:
    return {name: float(p) for name, p in zip(EMOTIONS, probs)}
