"""Turning stored images into a model's input: one function for calibration and evaluation.

Both must prepare pixels exactly as the device will, or the quantization ranges and the
reported accuracy describe a different input than the one the model sees in use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlite_convert.data.faces import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def to_model_input(
    images: np.ndarray, size: tuple[int, int], channels: int, value_range: tuple[float, float]
) -> np.ndarray:
    """uint8 (N, H, W[, C]) -> float32 (N, size[0], size[1], channels) in ``value_range``.

    Resizes with bilinear filtering when the stored size differs from the model's, and converts
    grayscale <-> RGB by replication / ITU-R 601 luma (what Pillow's ``convert("L")`` does).
    """
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(f"images must be (N,H,W), (N,H,W,1) or (N,H,W,3), got {images.shape}")
    if images.shape[-1] != channels:
        if channels == 3:
            images = np.repeat(images, 3, axis=-1)
        elif channels == 1:
            luma = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            images = np.clip(np.round(luma), 0, 255).astype(np.uint8)[..., None]
        else:
            raise DataError(f"the model takes {channels} channels; images have {images.shape[-1]}")
    if images.shape[1:3] != tuple(size):
        from PIL import Image

        mode = "L" if channels == 1 else "RGB"
        images = np.stack([
            np.asarray(Image.fromarray(img.squeeze(-1) if channels == 1 else img, mode)
                       .resize((size[1], size[0]), Image.BILINEAR)).reshape(size[0], size[1], channels)
            for img in images
        ])
    low, high = value_range
    return images.astype(np.float32) * ((high - low) / 255.0) + low


def load_images_resized(folder: str | Path, size: tuple[int, int], channels: int, limit: int = 500) -> np.ndarray:
    """Up to ``limit`` images from a folder tree as uint8 (N, H, W, C), sorted by path."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of images")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not paths:
        raise DataError(f"{folder}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    mode = "L" if channels == 1 else "RGB"
    out = []
    for path in paths:
        try:
            with Image.open(path) as img:
                img = img.convert(mode).resize((size[1], size[0]), Image.BILINEAR)
                out.append(np.asarray(img).reshape(size[0], size[1], channels))
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{path}: cannot read image ({exc})") from exc
    return np.stack(out)


def load_class_folders(root: str | Path, labels: tuple[str, ...]):
    """A labelled face set from a folder of class subfolders (``angry/``, ``happy/``, ...), as
    image tools lay them out: every image resized to the first one's size, RGB."""
    from PIL import Image, UnidentifiedImageError

    from affectlite_convert.data.faces import FaceSet

    root = Path(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    unknown = [p.name for p in folders if p.name not in labels]
    if not folders or unknown:
        raise DataError(f"{root}: expected one subfolder per label ({', '.join(labels)})"
                        + (f"; unknown: {', '.join(unknown)}" if unknown else "; found none"))
    images, ys, size = [], [], None
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            try:
                with Image.open(path) as img:
                    img = img.convert("RGB")
                    size = size or img.size
                    images.append(np.asarray(img.resize(size, Image.BILINEAR)))
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{path}: cannot read image ({exc})") from exc
            ys.append(labels.index(folder.name))
    if not images:
        raise DataError(f"{root}: no images in the class subfolders")
    return FaceSet(np.stack(images), np.array(ys, np.int64), str(root))
