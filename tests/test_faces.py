"""Face detection and alignment on real CREMA-D frames and composites made from them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from affectlite.faces.align import AlignOptions, aligned_crop, crop_geometry
from affectlite.faces.blazeface import BlazeFaceDetector, letterbox, ssd_anchors


def centre(face):
    return ((face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2)


def test_anchor_layouts_match_the_models():
    assert len(ssd_anchors(128, (8, 16, 16, 16), 2)) == 896
    assert len(ssd_anchors(192, (4,), 1)) == 2304


@pytest.mark.parametrize("shape", [(480, 640, 3), (360, 480, 3), (700, 300, 3), (128, 128, 3), (50, 1000, 4)])
def test_letterbox_samples_the_nearest_pixel_of_the_padded_square(shape):
    """Each output pixel is the frame pixel under its centre on the square the frame is padded
    to (black outside the frame), worked out pixel by pixel here."""
    frame = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    image, side, pad_x, pad_y = letterbox(frame, 128)
    h, w = shape[:2]
    assert side == max(h, w) and (pad_x, pad_y) == ((side - w) / 2, (side - h) / 2)
    for row in range(0, 128, 7):
        for col in range(0, 128, 5):
            y = int(np.floor((row + 0.5) * side / 128 - pad_y))
            x = int(np.floor((col + 0.5) * side / 128 - pad_x))
            expected = frame[y, x, :3] if 0 <= y < h and 0 <= x < w else np.zeros(3, np.uint8)
            assert np.array_equal(image[row, col], expected), (row, col)


@pytest.mark.parametrize("range_", ["short", "full"])
def test_the_face_is_found_where_it_is(frame, range_):
    with BlazeFaceDetector(range_) as detector:
        faces = detector.detect(frame)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.8
    x, y = centre(face)
    assert 195 < x < 235 and 130 < y < 170
    assert 90 < face.width < 140
    right_eye, left_eye, nose = face.keypoints[:3]
    assert right_eye[0] < nose[0] < left_eye[0]          # the subject's right eye is on the image's left
    assert right_eye[1] < nose[1] and left_eye[1] < nose[1]


def test_no_face_gives_an_empty_list(frame):
    green = np.ascontiguousarray(frame[:80, :150])        # green screen only
    with BlazeFaceDetector() as detector:
        assert detector.detect(green) == []
        assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []


def test_several_faces_in_a_composed_frame(frame):
    """Three copies of a real head on one wide frame: a room scene, for the full-range model."""
    face = frame[60:240, 130:300]                           # the head and some background
    canvas = np.full((480, 900, 3), 90, np.uint8)
    positions = [(20, 40), (280, 300), (260, 650)]
    for y, x in positions:
        canvas[y:y + face.shape[0], x:x + face.shape[1]] = face
    with BlazeFaceDetector("full") as detector:
        faces = detector.detect(canvas)
    assert len(faces) == 3
    found = sorted(centre(f)[0] for f in faces)
    expected = sorted(x + 85 for _, x in positions)
    assert np.allclose(found, expected, atol=25)

    two = np.full((360, 480, 3), 90, np.uint8)              # and two close faces for the short-range model
    two[90:270, 0:170], two[90:270, 300:470] = face, face
    with BlazeFaceDetector("short") as detector:
        assert len(detector.detect(two)) == 2


def test_rotated_face_is_found_and_aligned_upright(frame):
    angle = 25
    rotated = np.asarray(Image.fromarray(frame).rotate(angle, resample=Image.BILINEAR, center=(215, 150)))
    with BlazeFaceDetector() as detector:
        upright = detector.detect(frame)[0]
        tilted = detector.detect(rotated)
    assert len(tilted) == 1
    _, _, measured = crop_geometry(tilted[0], AlignOptions())
    # PIL rotates counter-clockwise; in image coordinates the eye line then slopes by -25 degrees.
    assert np.degrees(measured) == pytest.approx(-angle, abs=6)
    a = aligned_crop(frame, upright, 48).astype(float).ravel()
    b = aligned_crop(rotated, tilted[0], 48).astype(float).ravel()
    unaligned = aligned_crop(rotated, tilted[0], 48, options=AlignOptions(rotate=False)).astype(float).ravel()
    aligned_similarity, unaligned_similarity = np.corrcoef(a, b)[0, 1], np.corrcoef(a, unaligned)[0, 1]
    assert aligned_similarity > 0.7
    assert aligned_similarity > unaligned_similarity + 0.1


def test_face_at_the_border(frame):
    cut = np.ascontiguousarray(frame[:, 185:])              # a quarter of the face is outside the frame
    with BlazeFaceDetector() as detector:
        faces = detector.detect(cut)
    assert len(faces) == 1
    crop = aligned_crop(cut, faces[0], 48)
    assert crop.shape == (48, 48, 1) and crop.dtype == np.uint8


def test_crop_formats(frame):
    with BlazeFaceDetector() as detector:
        face = detector.detect(frame)[0]
    assert aligned_crop(frame, face, 48, channels=1).shape == (48, 48, 1)
    assert aligned_crop(frame, face, 64, channels=3).shape == (64, 64, 3)
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        aligned_crop(frame, face, 48, channels=2)


def test_detector_rejects_bad_frames_and_options(frame):
    with pytest.raises(ValueError, match="detector range"):
        BlazeFaceDetector("medium")
    with BlazeFaceDetector() as detector:
        with pytest.raises(ValueError, match="RGB uint8 frame"):
            detector.detect(frame.astype(np.float32))


def reference_crop(frame, face, size, channels, options=AlignOptions()):
    """The per-pixel numpy warp the C path replaced (bilinear taps on a 2x grid, averaged,
    border repeated): the sampling the expression model was measured with."""
    centre_, side, angle = crop_geometry(face, options)
    factor = int(np.clip(np.ceil(side / size), 1, 2))
    n = size * factor
    grid = (np.arange(n, dtype=np.float32) + 0.5) / n - 0.5
    u, v = np.meshgrid(grid * side, grid * side)
    cos, sin = np.cos(angle), np.sin(angle)
    xs = np.clip(centre_[0] + u * cos - v * sin - 0.5, 0, frame.shape[1] - 1.001)
    ys = np.clip(centre_[1] + u * sin + v * cos - 0.5, 0, frame.shape[0] - 1.001)
    image = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) if channels == 1 else \
        frame.astype(np.float32)
    image = image.reshape(frame.shape[0], frame.shape[1], channels)
    x0, y0 = xs.astype(np.int32), ys.astype(np.int32)
    x1, y1 = np.minimum(x0 + 1, frame.shape[1] - 1), np.minimum(y0 + 1, frame.shape[0] - 1)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
    sampled = ((image[y0, x0] * (1 - fx) + image[y0, x1] * fx) * (1 - fy)
               + (image[y1, x0] * (1 - fx) + image[y1, x1] * fx) * fy)
    if factor > 1:
        sampled = sampled.reshape(size, factor, size, factor, -1).mean(axis=(1, 3))
    return np.clip(np.round(sampled), 0, 255).astype(np.uint8)


def test_the_c_warp_makes_the_same_crop_as_the_reference(frame, happy_clip):
    """Mean absolute difference to the per-pixel reference below one grey level on real frames
    (tilted, near the border, grey and colour), and the same expression on PublicTest faces."""
    from conftest import read_frames

    frames = read_frames(happy_clip, every=7) + [np.ascontiguousarray(np.rot90(frame)), frame[:, 120:]]
    with BlazeFaceDetector() as detector:
        for rgb in frames:
            for face in detector.detect(rgb):
                for channels in (1, 3):
                    ours = aligned_crop(rgb, face, 48, channels).astype(int)
                    assert ours.shape == (48, 48, channels)
                    assert np.abs(ours - reference_crop(rgb, face, 48, channels)).mean() < 1.0


def test_the_c_warp_classifies_publictest_faces_as_the_reference(publictest_path):
    from affectlite.classifiers.expression import ExpressionClassifier

    with np.load(publictest_path) as data:
        faces48 = data["x"][::12][:300]
    same, total = 0, 0
    with BlazeFaceDetector() as detector, ExpressionClassifier() as classifier:
        for face48 in faces48:
            rgb = np.repeat(np.asarray(Image.fromarray(face48).resize((192, 192), Image.BILINEAR))[..., None], 3, axis=2)
            rgb = np.pad(rgb, ((32, 32), (32, 32), (0, 0)), mode="edge")
            found = detector.detect(rgb)
            if not found:
                continue
            total += 1
            ours = classifier.classify(aligned_crop(rgb, found[0], 48, 1))
            theirs = classifier.classify(reference_crop(rgb, found[0], 48, 1))
            same += int(np.argmax(ours) == np.argmax(theirs))
    assert total > 150 and same / total >= 0.97, (same, total)


@pytest.mark.parametrize("speed", [2, 8])
def test_following_between_detections_finds_a_moving_face_and_ends_a_track_that_leaves(frame, speed):
    """detect_every 4 on a composited clip: a real face (from a CREMA-D frame) slides across a
    background at ``speed`` px a frame, then leaves. The follower finds where it went between
    detections (the detector runs on little more than every 4th frame), and the face's track
    ends once it has gone."""
    from affectlite import EmotionRecognizer, RecognizerOptions
    from affectlite.tracker import IouTracker

    face_patch = frame[60:260, 120:320]                        # the actor's head and shoulders
    background = np.full((360, 640, 3), frame[5, 5], np.uint8)   # the green screen
    frames = []
    for step in range(56):
        canvas = background.copy()
        if step < 48:                                          # moving right, then gone
            x = min(20 + speed * step, 640 - 200)
            canvas[80:280, x:x + 200] = face_patch
        frames.append(canvas)
    with EmotionRecognizer(RecognizerOptions(detect_every=4)) as recognizer:
        stream = recognizer.stream(IouTracker(max_missed=1))
        per_frame = [recognizer.analyze_image(f, stream) for f in frames]
        assert stream.follower.detections <= 0.4 * len(frames)  # most frames followed, not detected
        assert all(len(faces) == 1 for faces in per_frame[:48])  # found in every frame while there
        ids = {faces[0].track_id for faces in per_frame[:48]}
        assert ids == {1}                                      # one person, one track, no swap
        centres = [(faces[0].box[0] + faces[0].box[2]) / 2 for faces in per_frame[:48]]
        assert centres[-1] - centres[0] > 80                  # the boxes followed the face across
        offsets = [c - min(20 + speed * step, 640 - 200) for step, c in enumerate(centres)]
        assert max(offsets) - min(offsets) < 10                # and stayed on it, frame by frame
        assert per_frame[-1] == [] and stream.tracker.active_ids == []    # it left: no face, the track has ended

        every = EmotionRecognizer(RecognizerOptions(detect_every=1))
        baseline = [every.analyze_image(f) for f in frames[:48]]
        every.close()
        # Where analysing every frame afresh gives a clear answer (its top two at least 0.2 apart),
        # following gives the same one; near ties may go either way on any path.
        clear = [(a, b) for a, b in zip(per_frame[:48], baseline)
                 if np.diff(sorted(b[0].probabilities.values())[-2:])[0] >= 0.2]
        assert len(clear) >= 10
        same = sum(a[0].emotion == b[0].emotion for a, b in clear)
        assert same >= 0.8 * len(clear), (same, len(clear))


def test_a_followed_face_that_vanishes_is_detected_again_at_once(frame, sad_clip):
    """detect_every 10, but on the frame where the face is gone the followed patch no longer
    matches: the detector runs on that very frame (not 7 frames later) and the face is dropped;
    the next person is then found on the frame they appear."""
    from conftest import read_frames

    from affectlite import EmotionRecognizer, RecognizerOptions

    with EmotionRecognizer(RecognizerOptions(detect_every=10)) as recognizer:
        stream = recognizer.stream()
        for rgb in (frame, frame, frame):
            assert len(recognizer.analyze_image(rgb, stream)) == 1
        assert stream.follower.detections == 1                 # the same face: followed
        assert recognizer.analyze_image(np.full_like(frame, 128), stream) == []
        assert stream.follower.detections == 2                 # gone: detected again at once
        assert len(recognizer.analyze_image(read_frames(sad_clip)[20], stream)) == 1
