"""Which way a head is turned, from the face detector's six keypoints, and whether that counts as
looking at the screen.

BlazeFace gives eyes, nose tip, mouth and both ear tragions for every face it finds, so a head's
direction costs a few arithmetic operations a face, no other model. Yaw: the nose tip's offset
from the midpoint of the ears, as a share of the face box's width, follows sin(yaw) closely,
reaching about 0.72 at a profile; pitch: where the nose tip sits between the eye line and the
mouth (about half way when the head is level). Both were fitted on the Pointing'04 head-pose
photos (15 people, yaw and pitch from -90 to +90 degrees), subjects 1-8, and checked on subjects
9-15 (``python benchmarks/head_pose.py``, which prints these constants and the accuracy per yaw
range). Head direction is not eye gaze: a person may look at the screen from the corner of the
eyes, or past it with the head turned towards it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: sin(yaw) = (nose_x - ears' midpoint x) / box width / YAW_SCALE (measured: 0.72).
YAW_SCALE = 0.72
#: pitch (degrees) = (PITCH_LEVEL - r) * PITCH_DEGREES, r = (nose_y - eye line y) / (mouth_y - eye line y).
PITCH_LEVEL = 0.495
PITCH_DEGREES = 200.0


@dataclass(frozen=True)
class HeadPose:
    """Degrees; yaw > 0: the head turned towards the image's right (Pointing'04's negative pan), pitch > 0: up."""

    yaw: float
    pitch: float


@dataclass(frozen=True)
class AttentionOptions:
    """A face counts as looking at the camera (the screen beside it) while its estimated head angles
    are within these. The defaults were chosen on Pointing'04 subjects 1-8 for heads truly within 30
    degrees of the camera (the estimates run short of the true angles past 30 degrees, pitch most):
    balanced accuracy 89.1 % on subjects 9-15 (docs/audience.md)."""

    max_yaw_deg: float = 40.0
    max_pitch_deg: float = 40.0
    #: A run of looking frames this long is a glance; a person who looked this long in all is a viewer.
    glance_s: float = 0.5
    viewer_s: float = 1.0

    def looking(self, pose: HeadPose | None) -> bool:
        return pose is not None and abs(pose.yaw) <= self.max_yaw_deg and abs(pose.pitch) <= self.max_pitch_deg


def head_pose(keypoints: np.ndarray, box: tuple[float, float, float, float]) -> HeadPose:
    """``keypoints``: (6, 2) in BlazeFace's order (right eye, left eye, nose tip, mouth, right ear,
    left ear), frame pixels; ``box``: the face's (x0, y0, x1, y1)."""
    k = np.asarray(keypoints, dtype=np.float64)
    width = max(box[2] - box[0], 1e-6)
    nose, mouth = k[2], k[3]
    ears_x = (k[4, 0] + k[5, 0]) / 2.0
    eyes_y = (k[0, 1] + k[1, 1]) / 2.0
    sine = np.clip((nose[0] - ears_x) / width / YAW_SCALE, -1.0, 1.0)
    level = (nose[1] - eyes_y) / max(mouth[1] - eyes_y, 1e-6)
    return HeadPose(yaw=float(np.degrees(np.arcsin(sine))), pitch=float((PITCH_LEVEL - level) * PITCH_DEGREES))
