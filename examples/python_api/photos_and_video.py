"""A folder of photos and a video, from ten lines of Python (default video: the bundled sample clip).

    python examples/python_api/photos_and_video.py PHOTO_FOLDER [VIDEO]
"""

import sys
from pathlib import Path

from affectlite import EmotionRecognizer
from affectlite import SAMPLE_CLIP
from affectlite.sources.images import read_image

with EmotionRecognizer() as recognizer:
    for photo in sorted(Path(sys.argv[1]).glob("*.[jp][pn]g")):
        for face in recognizer.analyze_image(read_image(photo)):
            print(f"{photo.name}: {face.emotion} ({face.valence}) at {[round(v) for v in face.box]}")
    for frame in recognizer.analyze_video(sys.argv[2] if len(sys.argv) > 2 else SAMPLE_CLIP, fps=2):
        print(f"video {frame.timestamp:5.1f}s: " + ", ".join(f"#{f.track_id} {f.emotion}" for f in frame.faces))
