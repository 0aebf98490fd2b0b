"""Find every face in a photo and print what it expresses.

    python examples/python_api/analyze_photo.py            # the bundled sample photo
    python examples/python_api/analyze_photo.py PHOTO
"""

import sys

from affectlite import SAMPLE_PHOTO, EmotionRecognizer

if len(sys.argv) > 2:
    sys.exit(f"usage: {sys.argv[0]} [PHOTO]  (default: the bundled sample photo)")
photo = sys.argv[1] if len(sys.argv) == 2 else SAMPLE_PHOTO

with EmotionRecognizer() as recognizer:
    faces = recognizer.analyze_image(photo)
print(f"{photo}: {len(faces)} face(s)")
for face in faces:
    top3 = sorted(face.probabilities.items(), key=lambda item: -item[1])[:3]
    print([round(v) for v in face.box], ", ".join(f"{name} {p:.0%}" for name, p in top3))
