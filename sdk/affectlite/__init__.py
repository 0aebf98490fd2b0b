"""affectlite: emotion recognition on edge devices.

The public surface is small: build an :class:`EmotionRecognizer` from :class:`RecognizerOptions`,
call ``analyze_image`` or ``analyze_video``, read :class:`FaceEmotion` results. For your own
frame loop over a video or camera, pass ``recognizer.stream()`` (a :class:`FaceStream`) to
``analyze_image`` with every frame.
"""

from affectlite.labels import EMOTIONS, VALENCE
from affectlite.recognizer import EmotionRecognizer, FaceEmotion, FaceStream, FrameResult, RecognizerOptions
from affectlite.samples import SAMPLE_CLIP, SAMPLE_PHOTO
from affectlite.sources.images import read_image

__all__ = ["EMOTIONS", "VALENCE", "SAMPLE_CLIP", "SAMPLE_PHOTO", "EmotionRecognizer", "FaceEmotion", "FaceStream", "FrameResult",
           "RecognizerOptions", "read_image"]

def _version() -> str:
    """The installed distribution's version: written once, in pyproject.toml."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("affectlite")
    except PackageNotFoundError:       # imported from a source tree that was never installed
        return "0+unknown"


__version__ = _version()
