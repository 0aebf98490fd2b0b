"""What a converted model is for and not for, written into its card per task.

A card that only lists accuracy invites uses nobody measured; these texts say plainly where an
emotion model may be used, where the law forbids it, and what it gets wrong. ``convert`` writes
them for the tasks below; ``--intended-use`` and ``--limitation`` replace or add to them.
"""

from __future__ import annotations

#: Uses no affectlite model is for, whatever its task (EU AI Act, Regulation (EU) 2024/1689).
OUT_OF_SCOPE = [
    "Emotion recognition in the workplace or in education: prohibited in the EU (AI Act, Art. 5(1)(f)), "
    "except for medical or safety reasons.",
    "Decisions about a person (hiring, credit, insurance, access, policing, grading, diagnosis): the output is "
    "what a face or voice looks or sounds like, not what the person feels.",
    "Identifying or re-identifying people: the models see expressions, not identities, and nothing here is "
    "built or tested for that.",
    "Use without telling the people in view: deployers in the EU must inform them (AI Act, Art. 50(3)).",
]

INTENDED_USE = {
    "facial-expression": "Estimating the facial expression of people who are in front of a camera and know it (a "
                         "kiosk, a screen, an exhibit), in aggregate or over a few seconds, on the device, with "
                         "no image leaving it: how an audience reacts, whether a visitor seems to need help.",
    "speech-emotion": "Estimating the emotional tone of speech near a device (2 s windows), as a second opinion "
                      "beside the face, on the device, with no audio leaving it.",
    "fusion": "Joining the face and voice models' outputs for one person over the last 2 s into one estimate.",
}

LIMITATIONS = {
    "facial-expression": [
        "Trained on posed and web-scraped faces (FER2013, an AffectNet-style set): mostly frontal, adult, "
        "well lit; expect lower accuracy on side-on, low-light, occluded, child or elderly faces, and on mild, "
        "spontaneous expressions.",
        "An expression is not an emotion: people smile when unhappy and keep a neutral face when upset.",
        "Disgust and fear are the hardest labels (few training faces, often read as angry or surprise).",
        "Not evaluated for differences between demographic groups: the training sets carry no such labels.",
    ],
    "speech-emotion": [
        "Trained on acted speech (RAVDESS, EMOVO, TurEV-DB) in English, Italian and Turkish; natural speech, "
        "other languages and noisy rooms score lower.",
        "Lone words carry less than sentences: about a quarter of 0.8 s utterances are too unsure to count.",
    ],
    "fusion": [
        "Learned from face and voice outputs paired by label, not from people recorded in time; real "
        "audio-visual data for training was six clips.",
    ],
}


def scope_for(task: str) -> tuple[str, list[str], list[str]]:
    """(intended use, out of scope, limitations) for a task; a custom task gets the out-of-scope list only."""
    return INTENDED_USE.get(task, ""), list(OUT_OF_SCOPE), list(LIMITATIONS.get(task, []))
