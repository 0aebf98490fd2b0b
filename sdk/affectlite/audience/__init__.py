"""Audience measurement beside emotion: who was in view, who looked, for how long, and how they
looked while they did (definitions and their limits: docs/audience.md).

Counts only: nothing here keeps an image, a face embedding or anything that could recognise a
person again; a track id is a counter that is forgotten once the person has left.
"""

from affectlite.audience.head_pose import AttentionOptions, HeadPose, head_pose
from affectlite.audience.tally import DWELL_BUCKETS, AudienceTally, Seen

__all__ = ["AttentionOptions", "AudienceTally", "DWELL_BUCKETS", "HeadPose", "Seen", "head_pose"]
