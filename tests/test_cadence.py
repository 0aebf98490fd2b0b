"""Classifying each tracked face on some frames only (``classify_every``), and repeating its last
result in between: on its own, and in the recognizer on a real CREMA-D clip."""

from __future__ import annotations

import numpy as np
import pytest

from affectlite.classifiers.cadence import ClassifyCadence


def run(cadence: ClassifyCadence, frames: list[list[int]]) -> list[list[int]]:
    """The track ids classified on each frame; each result records the frame it was made on."""
    classified = []
    for number, track_ids in enumerate(frames):
        calls: list[int] = []

        def classify(due: list[int]) -> np.ndarray:
            calls.extend(track_ids[i] for i in due)
            return np.array([[number, track_ids[i]] for i in due], np.float32)

        results = cadence.results(track_ids, classify)
        assert [int(r[1]) for r in results] == track_ids          # each face gets its own track's result
        assert all(number - int(r[0]) < cadence.every for r in results)   # never older than N frames
        classified.append(calls)
    return classified


def test_every_face_is_classified_at_once_then_in_turns_spread_over_the_frames():
    crowd = list(range(1, 11))
    classified = run(ClassifyCadence(every=3), [crowd] * 12)
    assert classified[0] == crowd                              # ten new faces: all classified
    assert all(len(calls) in (3, 4) for calls in classified[1:])   # then 10 / 3 a frame, not 10 every 3rd
    counts = np.bincount(sum(classified[1:], []))[1:]
    assert counts.min() >= 3 and counts.max() - counts.min() <= 1    # each face in turn


def test_a_new_face_and_a_face_that_comes_back_are_classified_at_once():
    classified = run(ClassifyCadence(every=4), [[1], [1], [1, 2], [1, 2], [2], [1, 2]])
    assert 2 in classified[2]                                  # new on frame 2
    assert 1 in classified[5]                                  # gone on frame 4, back on frame 5
    assert classified[1] == [] and 2 not in classified[3]      # in between, the faces repeat their results


def test_one_face_is_classified_on_every_nth_frame():
    assert run(ClassifyCadence(every=3), [[7]] * 9) == [[7], [], [], [7], [], [], [7], [], []]


def test_every_1_classifies_every_face_on_every_frame():
    frames = [[1, 2, 3]] * 5
    assert run(ClassifyCadence(every=1), frames) == frames


def test_classify_every_below_1_is_refused():
    from affectlite import EmotionRecognizer, RecognizerOptions

    with pytest.raises(ValueError, match="classify_every"):
        ClassifyCadence(every=0)
    with pytest.raises(ValueError, match="classify_every must be >= 1, got 0"):
        EmotionRecognizer(RecognizerOptions(classify_every=0))


def test_a_face_classified_every_other_frame_repeats_the_results_of_classifying_every_frame(happy_clip):
    """The same frames and the same faces (the same detector schedule): with classify_every 2 each
    face's probabilities are, frame by frame, those of classifying every frame on this frame or
    the one before; half the classifications are spared."""
    from affectlite import EmotionRecognizer, RecognizerOptions
    from affectlite.sources.video_file import read_video

    frames = [frame.rgb for frame in read_video(happy_clip)][:40]
    with EmotionRecognizer(RecognizerOptions(detect_every=3, classify_every=1)) as every, \
            EmotionRecognizer(RecognizerOptions(detect_every=3, classify_every=2)) as sparing:
        a_stream, b_stream = every.stream(), sparing.stream()
        a = [every.analyze_image(f, a_stream) for f in frames]
        b = [sparing.analyze_image(f, b_stream) for f in frames]
    assert all(len(x) == len(y) == 1 for x, y in zip(a, b))
    repeated = 0
    for i, (x, y) in enumerate(zip(a, b)):
        assert x[0].box == y[0].box and x[0].track_id == y[0].track_id
        if y[0].probabilities == x[0].probabilities:
            continue
        assert i > 0 and y[0].probabilities == a[i - 1][0].probabilities, i
        repeated += 1
    assert repeated >= 15                                      # most odd frames repeat (some stay equal)
    assert b_stream.cadence.classified == 20 and a_stream.cadence.classified == 40
