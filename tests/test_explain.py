"""Explanations: where the model looks (occlusion on TFLite, Grad-CAM on Keras), margins, shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affectlite.classifiers.expression import ExpressionClassifier
from affectlite.explain import contributions, heat_on_frame, margin, occlusion_map, overlay
from affectlite.labels import EMOTIONS
from affectlite_convert.cli import main as convert_main

MODELS = Path(__file__).parents[1] / "sdk" / "affectlite" / "models"
HAPPY = EMOTIONS.index("happy")
MOUTH = (slice(32, 44), slice(12, 36))          # rows, columns of a 48x48 FER2013 crop
BACKGROUND = np.zeros((48, 48), bool)           # the crop's corners: hair, ears, background
BACKGROUND[:10, :10] = BACKGROUND[:10, -10:] = BACKGROUND[-10:, :10] = BACKGROUND[-10:, -10:] = True


@pytest.fixture(scope="module")
def clearly_happy(publictest_path):
    """Ten PublicTest faces labelled happy that the shipped model calls happy clearly but not
    with a saturated probability: an int8 output at 255/256 cannot drop where a patch covers the
    mouth, so occlusion shows nothing there (see docs/explanations.md)."""
    with np.load(publictest_path) as data:
        x, y = data["x"], data["y"]
    classifier = ExpressionClassifier()
    candidates = np.where(y == HAPPY)[0][:200]
    sureness = np.array([classifier.classify(x[i][..., None])[HAPPY] for i in candidates])
    clear = np.where((sureness >= 0.85) & (sureness <= 0.985))[0]
    chosen = candidates[clear[np.argsort(sureness[clear])[::-1][:10]]]
    assert len(chosen) == 10
    return [x[i][..., None] for i in chosen]


def test_occlusion_on_the_int8_model_concentrates_on_the_mouth(clearly_happy):
    """Over ten faces: a face whose corner hides a hand or hair can draw some of the heat there,
    so the rule is for nearly all of them, and for the mean clearly."""
    classifier = ExpressionClassifier()
    mouth, background = [], []
    for crop in clearly_happy:
        heat = occlusion_map(classifier.classify, crop, HAPPY)
        assert heat.shape == (48, 48) and heat.max() == pytest.approx(1.0)
        mouth.append(heat[MOUTH].mean())
        background.append(heat[BACKGROUND].mean())
    mouth, background = np.array(mouth), np.array(background)
    assert (mouth > 2 * background).sum() >= 8
    assert mouth.mean() > 4 * background.mean()


def test_grad_cam_on_the_keras_model_ignores_the_background(clearly_happy):
    """As for occlusion, over ten faces: nearly all, and the mean clearly (with face model v4 one
    of the ten has its mouth only 1.3x as hot as its corners)."""
    from affectlite_convert.explain import load_explainer

    explainer = load_explainer(MODELS / "face_expression.keras")
    mouth, background = [], []
    for crop in clearly_happy:
        heat = explainer.heat(crop, HAPPY)
        mouth.append(heat[MOUTH].mean())
        background.append(heat[BACKGROUND].mean())
    mouth, background = np.array(mouth), np.array(background)
    assert (mouth > 2 * background).sum() >= 8
    assert mouth.mean() > 4 * background.mean()


def test_occluding_nothing_that_matters_gives_an_empty_map():
    constant = lambda crop: np.array([0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1])
    assert occlusion_map(constant, np.full((48, 48, 1), 128, np.uint8), HAPPY).max() == 0


def test_explain_cli_on_a_photo_and_on_crops(tmp_path, frame, clearly_happy, capsys):
    Image.fromarray(frame).save(tmp_path / "photo.png")
    Image.fromarray(clearly_happy[0][..., 0]).save(tmp_path / "crop.png")
    out = tmp_path / "maps"
    assert convert_main(["explain", str(MODELS / "face_expression_int8.tflite"), str(tmp_path / "photo.png"),
                         "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{tmp_path / 'photo.png'} face 0: happy ")
    photo = np.asarray(Image.open(out / "photo_explained.png"))
    assert photo.shape == frame.shape and not np.array_equal(photo, frame)
    crop_png = np.asarray(Image.open(next(out.glob("photo_face0_happy.png"))))
    assert crop_png.shape == (192 + 3 * 16 + 6, 192, 3)          # the map, and the top three written below

    assert convert_main(["explain", str(MODELS / "face_expression.keras"), str(tmp_path / "crop.png"), "--crops",
                         "--out", str(out), "--top", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{tmp_path / 'crop.png'} face 0: happy ") and line.count(",") == 1


@pytest.mark.parametrize("args, message", [
    (["missing.keras"], "missing.keras: no such model"),
    ([str(MODELS / "face_expression_int8.tflite"), "--method", "gradcam"], "Grad-CAM needs the Keras model"),
])
def test_explain_cli_bad_input(tmp_path, frame, capsys, args, message):
    Image.fromarray(frame).save(tmp_path / "photo.png")
    argv = ["explain", args[0], str(tmp_path / "photo.png"), "--out", str(tmp_path), *args[1:]]
    assert convert_main(argv) == 2
    assert message in capsys.readouterr().err


def test_explain_cli_unreadable_image_is_reported_and_others_go_on(tmp_path, frame, capsys):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    Image.fromarray(frame).save(tmp_path / "photo.png")
    assert convert_main(["explain", str(MODELS / "face_expression_int8.tflite"), str(tmp_path / "broken.png"),
                         str(tmp_path / "photo.png"), "--out", str(tmp_path / "maps")]) == 1
    captured = capsys.readouterr()
    assert "broken.png" in captured.err and "photo.png face 0" in captured.out


def test_map_goes_back_onto_the_frame_where_the_face_is(frame):
    from affectlite.faces.blazeface import BlazeFaceDetector

    face = BlazeFaceDetector("short").detect(frame)[0]
    placed, mask = heat_on_frame(frame.shape, face, np.ones((48, 48), np.float32))
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = face.box
    assert x0 - 0.2 * (x1 - x0) < xs.mean() < x1 and y0 < ys.mean() < y1 + 0.2 * (y1 - y0)
    assert np.array_equal(placed > 0, mask > 0)
    assert overlay(frame, placed, mask=mask)[mask == 0].tolist() == frame[mask == 0].tolist()


def test_margin_and_modality_shares():
    face = np.array([0.05, 0.0, 0.05, 0.0, 0.55, 0.3, 0.05])
    voice = np.array([0.71, 0.0, 0.05, 0.0, 0.14, 0.05, 0.05])
    fused = 0.6 * face + 0.4 * voice
    explained = contributions({"face": face, "voice": voice}, {"face": 0.6, "voice": 0.4}, fused)
    assert explained["summary"] == "face: neutral 0.55, voice: angry 0.71"
    assert explained["emotion"] == "neutral"
    shares = explained["modalities"]
    assert shares["face"]["share"] + shares["voice"]["share"] == pytest.approx(1.0, abs=1e-3)
    assert shares["face"]["share"] == pytest.approx(0.6 * 0.55 / fused[4], abs=1e-3)
    assert margin(fused) == pytest.approx(fused[4] - fused[0])
    only_face = contributions({"face": face, "voice": None}, {"face": 0.6, "voice": 0.4}, face)
    assert set(only_face["modalities"]) == {"face"} and only_face["modalities"]["face"]["share"] == pytest.approx(1.0)
    # int8 outputs, dequantised, sum to 1 only within a few 1/256 steps: the shares still sum to 1
    quantised = np.round(voice * 256) / 256 - np.array([0, 0, 0, 0, 3, 0, 0]) / 256
    unnormalised = 0.6 * face + 0.4 * quantised
    explained = contributions({"face": face, "voice": quantised}, {"face": 0.6, "voice": 0.4},
                              unnormalised / unnormalised.sum())
    assert sum(part["share"] for part in explained["modalities"].values()) == pytest.approx(1.0, abs=2e-4)
