"""Text valence with VADER's lexicon and rules (Hutto & Gilbert 2014): no model, no network.

A lexicon method suits the short, informal lines a kiosk sees (captions, a speech-to-text
transcript, a chat message) and runs in microseconds. It scores polarity only, so text joins the
face and the voice at the valence level (affectlite.fusion.valence), never at the seven emotions.
The text itself is never published; only its scores are.
"""

from __future__ import annotations

from dataclasses import dataclass

from affectlite.labels import Valence

#: VADER's own recommended cut-offs on the compound score.
POSITIVE_AT, NEGATIVE_AT = 0.05, -0.05
MAX_CHARS = 2000


@dataclass(frozen=True)
class TextValence:
    compound: float                       # -1 (most negative) .. 1 (most positive)
    valence: Valence
    probabilities: dict[str, float]       # VADER's proportions of positive / neutral / negative text

    def as_dict(self) -> dict:
        return {"valence": self.valence, "compound": round(self.compound, 4),
                "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()}}


class TextScorer:
    def __init__(self):
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as exc:
            raise RuntimeError("text valence needs vaderSentiment: pip install 'affectlite[text]'") from exc
        self._analyzer = SentimentIntensityAnalyzer()

    def score(self, text: str) -> TextValence:
        text = text.strip()
        if not text:
            raise ValueError("empty text: send a caption or transcript line")
        if len(text) > MAX_CHARS:
            raise ValueError(f"text longer than {MAX_CHARS} characters: send one caption or sentence at a time")
        scores = self._analyzer.polarity_scores(text)
        compound = float(scores["compound"])
        valence: Valence = "positive" if compound >= POSITIVE_AT else "negative" if compound <= NEGATIVE_AT else "neutral"
        probabilities = {"positive": float(scores["pos"]), "neutral": float(scores["neu"]), "negative": float(scores["neg"])}
        return TextValence(compound, valence, probabilities)
