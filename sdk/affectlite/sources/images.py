"""Still images to RGB uint8 arrays, whatever their mode: grayscale, palette, CMYK, 16-bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class MediaError(ValueError):
    """A file that cannot be read as an image or a video; the message names the file."""


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB, with EXIF orientation applied (phones store photos sideways)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                # 16/32-bit grayscale: scale to 8 bits instead of clipping at 255.
                values = np.asarray(image, dtype=np.float64)
                top = 65535.0 if image.mode.startswith("I;16") else max(values.max(), 1.0)
                gray = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=2)
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"{path}: not a readable image ({exc})") from exc
