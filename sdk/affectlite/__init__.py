"""affectlite: emotion recognition on edge devices.

The public surface is small: build an :class:`EmotionRecognizer` from :class:`RecognizerOptions`,
call ``analyze_image`` or ``analyze_video``, read :class:`FaceEmotion` results.
"""

from affectlite.labels import EMOTIONS, VALENCE
from affectlite.recognizer import EmotionRecognizer, FaceEmotion, FrameResult, RecognizerOptions

__all__ = ["EMOTIONS", "VALENCE", "EmotionRecognizer", "FaceEmotion", "FrameResult", "RecognizerOptions"]
__version__ = "0.1.0"
