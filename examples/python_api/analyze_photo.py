"""Find every face in a photo and print what it expresses.

    python examples/python_api/analyze_photo.py PHOTO
"""

import sys

from affectlite import EmotionRecognizer
from affectlite.sources.images import read_image

with EmotionRecognizer() as recognizer:
    faces = recognizer.analyze_image(read_image(sys.argv[1]))
print(f"{len(faces)} face(s)")
for face in faces:
    top3 = sorted(face.probabilities.items(), key=lambda item: -item[1])[:3]
    print([round(v) for v in face.box], ", ".join(f"{name} {p:.0%}" for name, p in top3))
