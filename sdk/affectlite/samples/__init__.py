"""Sample media shipped with the package (see README.md here for their licence)."""

from pathlib import Path

#: A real CREMA-D clip (a happy "Don't forget a jacket", 480x360, with sound): the default input
#: of ``affectlite analyze`` and of ``affectlite run``, so that the first run needs no camera.
SAMPLE_CLIP = Path(__file__).resolve().parent / "1001_DFA_HAP_XX.flv"
