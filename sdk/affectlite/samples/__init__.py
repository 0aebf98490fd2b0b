"""Sample media shipped with the package (see README.md here for their licence)."""

from pathlib import Path

#: A real CREMA-D clip (a happy "Don't forget a jacket", 480x360, with sound): the default input
#: of ``affectlite analyze`` and of ``affectlite run``, so that the first run needs no camera.
SAMPLE_CLIP = Path(__file__).resolve().parent / "1001_DFA_HAP_XX.flv"

#: One frame of that clip (frame 33 of 56, as decoded), a JPEG: a photo for examples and tests
#: of the image path that needs no file of the user's.
SAMPLE_PHOTO = Path(__file__).resolve().parent / "1001_DFA_HAP_XX.jpg"
