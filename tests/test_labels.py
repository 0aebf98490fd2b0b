"""The shared emotion vocabulary and its valence mapping."""

import numpy as np
import pytest

from affectlite.labels import EMOTIONS, FER_PACKAGE_ORDER, VALENCE, reorder_probabilities, valence_scores


def test_order_is_alphabetical_as_in_the_data_files():
    assert EMOTIONS == tuple(sorted(EMOTIONS))
    assert set(VALENCE) == set(EMOTIONS)


def test_reorder_from_the_fer_package_order():
    probs = np.array([[0.1, 0.0, 0.0, 0.2, 0.3, 0.0, 0.4]])  # angry disgust fear happy sad surprise neutral
    ours = reorder_probabilities(probs, FER_PACKAGE_ORDER)
    assert dict(zip(EMOTIONS, ours[0])) == {"angry": 0.1, "disgust": 0.0, "fear": 0.0, "happy": 0.2,
                                            "neutral": 0.4, "sad": 0.3, "surprise": 0.0}


def test_reorder_rejects_a_different_vocabulary():
    with pytest.raises(ValueError, match="not a permutation"):
        reorder_probabilities(np.zeros(7), ["a", "b", "c", "d", "e", "f", "g"])


def test_valence_sums_probability_mass():
    scores = valence_scores(np.array([0.1, 0.1, 0.1, 0.3, 0.2, 0.1, 0.1]))
    assert scores == pytest.approx({"negative": 0.4, "positive": 0.4, "neutral": 0.2})
