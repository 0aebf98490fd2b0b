"""Still images to RGB uint8 arrays, whatever their mode: grayscale, palette, CMYK, 16-bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

#: Larger images are refused before they are decoded: a 20000x20000 PNG of a few hundred bytes
#: would need 1.2 GB as RGB (a "decompression bomb"), and no camera photo comes near this.
MAX_PIXELS = 64_000_000


class MediaError(ValueError):
    """A file that cannot be read as an image or a video; the message names the file."""


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB, with EXIF orientation applied (phones store photos sideways)."""
    return _decode(Path(path), Path(path))


def decode_image(data: bytes | bytearray | memoryview, name: str = "image bytes") -> np.ndarray:
    """An encoded image held in memory (the bytes of a JPEG, PNG, ... file, as an upload or a
    camera's snapshot gives them) as (H, W, 3) uint8 RGB; ``name`` is what errors call it."""
    import io

    return _decode(io.BytesIO(bytes(data)), name)


def _decode(source, path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(source) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise MediaError(f"{path}: {width}x{height} is {width * height / 1e6:.0f} megapixels, over the "
                                 f"{MAX_PIXELS / 1e6:.0f} MP limit for one image; scale it down first")
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
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaError(f"{path}: over the {MAX_PIXELS / 1e6:.0f} MP limit for one image, refused undecoded "
                         f"({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"{path}: not a readable image ({exc})") from exc


def as_rgb(image) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a path, an encoded file's bytes, a PIL image or an array (RGB,
    grayscale or RGBA uint8)."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode_image(image)
    if hasattr(image, "convert") and hasattr(image, "size"):          # a PIL image
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        hint = "scale floats to 0..255 first" if array.dtype.kind == "f" else \
            "pass a path, the bytes of an image file, a PIL image or an (H, W, 3) uint8 array"
        raise ValueError(f"expected a uint8 image, got {array.dtype}; {hint}")
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return np.ascontiguousarray(array[..., :3])
    raise ValueError(f"expected an (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grayscale image, got shape {array.shape}")
