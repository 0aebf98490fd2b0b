"""Print the dominant emotion of every face, five times a second, in a video (default: the sample clip).

    python examples/python_api/analyze_video.py [VIDEO]
"""

import sys

from affectlite import EmotionRecognizer, RecognizerOptions
from affectlite import SAMPLE_CLIP

path = sys.argv[1] if len(sys.argv) > 1 else SAMPLE_CLIP
with EmotionRecognizer(RecognizerOptions(detector="short")) as recognizer:
    for frame in recognizer.analyze_video(path, fps=5):
        for face in frame.faces:
            print(f"{frame.timestamp:6.2f}s  face #{face.track_id}  {face.emotion:<8} "
                  f"{face.probabilities[face.emotion]:.0%}  ({face.valence})")
