"""The third stream: captions or a transcript, scored for valence (not for the seven emotions)."""

from affectlite.text.valence import TextScorer, TextValence

__all__ = ["TextScorer", "TextValence"]
