"""``affectlite-convert explain``: class-activation heat maps over face crops and whole photos.

A Keras model gets Grad-CAM (the last convolution's feature maps weighted by the gradient of the
class score, Selvaraju et al. 2017); a TFLite-only model gets occlusion sensitivity run on the
interpreter (affectlite.explain), since a flatbuffer has no gradients. Photos go through the same
detector and eye-line alignment as the device, so the map shows what the model saw there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectlite.annotate import draw, save_image
from affectlite.explain import heat_on_frame, occlusion_map, overlay, top_classes
from affectlite.labels import EMOTIONS, VALENCE
from affectlite.recognizer import FaceEmotion


def last_conv_layer(model) -> str:
    """The deepest layer with a 4-D output: where Grad-CAM still has a spatial map."""
    for layer in reversed(model.layers):
        shape = tuple(layer.output.shape)
        if len(shape) == 4 and min(shape[1:3]) > 1:
            return layer.name
    raise ValueError(f"{model.name}: no convolution with a spatial output; Grad-CAM needs one (use a .tflite model "
                     "for occlusion maps)")


class GradCam:
    def __init__(self, model, value_range=(0.0, 1.0), layer: str | None = None):
        import keras

        self.model = model
        self.layer = layer or last_conv_layer(model)
        self._probe = keras.Model(model.inputs, [model.get_layer(self.layer).output, model.outputs[0]])
        _, self.height, self.width, self.channels = model.inputs[0].shape
        low, high = value_range
        self._scale, self._offset = (high - low) / 255.0, low

    def _input(self, crop: np.ndarray) -> np.ndarray:
        return crop.reshape(1, self.height, self.width, self.channels).astype(np.float32) * self._scale + self._offset

    def classify(self, crop: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(self._input(crop), training=False))[0]

    def heat(self, crop: np.ndarray, target: int) -> np.ndarray:
        import tensorflow as tf

        x = tf.constant(self._input(crop))
        with tf.GradientTape() as tape:
            features, probs = self._probe(x, training=False)
            score = probs[:, target]
        grads = tape.gradient(score, features)[0].numpy()
        features = features[0].numpy()
        cam = np.maximum((features * grads.mean(axis=(0, 1))).sum(axis=-1), 0)
        if cam.max() > 0:
            cam = cam / cam.max()
        # Up to the crop's size (bilinear through Pillow, as the maps are smooth anyway).
        from PIL import Image

        up = Image.fromarray(cam.astype(np.float32), mode="F").resize((self.width, self.height), Image.BILINEAR)
        return np.clip(np.asarray(up), 0, 1)


class OcclusionExplainer:
    def __init__(self, model_path: Path):
        from affectlite.classifiers.expression import ExpressionClassifier

        self.classifier = ExpressionClassifier(model_path)
        self.height, self.width = self.classifier.input_size
        self.channels = self.classifier.channels

    def classify(self, crop: np.ndarray) -> np.ndarray:
        return self.classifier.classify(crop)

    def heat(self, crop: np.ndarray, target: int) -> np.ndarray:
        return occlusion_map(self.classify, crop, target)


class KerasOcclusion(GradCam):
    """Occlusion maps on the Keras model, for comparing the two methods on one model."""

    def heat(self, crop: np.ndarray, target: int) -> np.ndarray:
        return occlusion_map(self.classify, crop, target)


def load_explainer(path: Path, method: str = "auto", value_range=(0.0, 1.0)):
    """Grad-CAM for Keras models, occlusion for TFLite models (or when asked for)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such model")
    if path.suffix == ".tflite":
        if method == "gradcam":
            raise ValueError(f"{path}: Grad-CAM needs the Keras model; a .tflite model gets --method occlusion")
        return OcclusionExplainer(path)
    from affectlite_convert.keras_io import load_model

    loaded = load_model(path)
    if loaded.keras_model is None:
        raise ValueError(f"{path}: a SavedModel without Keras layers; convert it and explain the .tflite instead")
    return (KerasOcclusion if method == "occlusion" else GradCam)(loaded.keras_model, value_range)


@dataclass
class Explanation:
    source: str
    face: int
    top: list[tuple[str, float]]
    crop_png: Path
    photo_png: Path | None


def captioned(crop_overlay: np.ndarray, top: list[tuple[str, float]], size: int = 192) -> np.ndarray:
    """The crop's overlay enlarged, with the top classes and their probabilities written below."""
    from PIL import Image, ImageDraw

    big = Image.fromarray(crop_overlay).resize((size, size), Image.NEAREST)
    canvas = Image.new("RGB", (size, size + 16 * len(top) + 6), (20, 20, 20))
    canvas.paste(big, (0, 0))
    pen = ImageDraw.Draw(canvas)
    for row, (name, p) in enumerate(top):
        pen.text((6, size + 3 + 16 * row), f"{name:<9} {p:.2f}", fill=(255, 255, 255))
    return np.asarray(canvas)


def explain_image(explainer, path: Path, out: Path, crops: bool = False, top_k: int = 3) -> list[Explanation]:
    """Heat maps for every face in ``path`` (or for the image itself when it is a face crop)."""
    from PIL import Image

    from affectlite.sources.images import read_image

    rgb = read_image(path)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    if crops:
        gray = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        image = Image.fromarray(np.clip(gray if explainer.channels == 1 else rgb, 0, 255).astype(np.uint8))
        crop = np.asarray(image.resize((explainer.width, explainer.height), Image.BILINEAR))
        pairs = [(None, crop.reshape(explainer.height, explainer.width, explainer.channels))]
    else:
        from affectlite.recognizer import EmotionRecognizer, RecognizerOptions

        with EmotionRecognizer(RecognizerOptions(detector="full")) as recognizer:
            pairs = recognizer.face_crops(rgb, explainer.height, explainer.channels)
    photo_heat = np.zeros(rgb.shape[:2], np.float32)
    photo_mask = np.zeros(rgb.shape[:2], np.float32)
    labelled = []
    for index, (face, crop) in enumerate(pairs):
        probs = explainer.classify(crop)
        top = top_classes(probs, top_k)
        heat = explainer.heat(crop, EMOTIONS.index(top[0][0]))
        crop_png = out / f"{path.stem}_face{index}_{top[0][0]}.png"
        save_image(captioned(overlay(crop, heat), top), crop_png)
        if face is not None:
            placed, mask = heat_on_frame(rgb.shape, face, heat)
            photo_heat = np.maximum(photo_heat, placed)
            photo_mask = np.maximum(photo_mask, mask)
            labelled.append(FaceEmotion(face.box, face.score, dict(zip(EMOTIONS, map(float, probs))), top[0][0],
                                        VALENCE[top[0][0]]))
        results.append(Explanation(str(path), index, top, crop_png, None))
    if results and not crops:
        photo_png = out / f"{path.stem}_explained.png"
        save_image(draw(overlay(rgb, photo_heat, mask=photo_mask), labelled), photo_png)
        for result in results:
            result.photo_png = photo_png
    return results
