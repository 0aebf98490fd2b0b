"""Track ids across frames by box overlap: one id per person, new people new ids, gone people ended."""

from __future__ import annotations

import numpy as np

from affectlite.tracker import IouTracker, iou_matrix


def test_overlaps_of_every_pair_of_boxes():
    a = [(0, 0, 10, 10), (100, 100, 110, 120)]
    b = [(5, 0, 15, 10), (0, 0, 10, 10), (50, 50, 60, 60), (3, 3, 3, 3)]
    overlaps = iou_matrix(a, b)
    assert overlaps.shape == (2, 4)
    assert np.allclose(overlaps[0], [50 / 150, 1.0, 0.0, 0.0])   # half overlapping, same, apart, empty box
    assert np.allclose(overlaps[1], 0.0)
    assert iou_matrix([], b).shape == (0, 4) and iou_matrix(a, []).shape == (2, 0)


def test_two_people_keep_their_ids_while_they_move_and_a_newcomer_gets_a_new_one():
    tracker = IouTracker()
    left, right = (0, 0, 100, 100), (300, 0, 400, 100)
    assert tracker.update([left, right]) == [1, 2]
    moved = [(310, 5, 410, 105), (10, 5, 110, 105)]                 # listed in the other order
    assert tracker.update(moved) == [2, 1]
    assert tracker.update([moved[1], moved[0], (600, 0, 700, 100)]) == [1, 2, 3]


def test_a_track_survives_a_few_missed_frames_then_ends():
    tracker = IouTracker(max_missed=2)
    box = (0, 0, 100, 100)
    tracker.update([box])
    tracker.update([])
    tracker.update([])
    assert tracker.update([box]) == [1]                              # missed twice: still the same person
    for _ in range(3):
        tracker.update([])
    assert tracker.active_ids == [] and tracker.update([box]) == [2]  # gone for three: a new track
