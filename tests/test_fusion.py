"""Audio-visual fusion: label-paired sequences, the LSTM's int8 conversion, and the report."""

from __future__ import annotations

import numpy as np
import pytest

from affectlite_convert.converter import ConvertOptions, convert
from affectlite_convert.data.pairs import PairingOptions, make_sequences, remove_modality
from affectlite_convert.edgetpu.check import check_model
from affectlite_convert.training.fusion_lstm import FusionSpec, build_fusion_lstm


def toy_sources(rng):
    face_labels = np.repeat(np.arange(7), 10)
    face_probs = rng.dirichlet(np.ones(7), len(face_labels))
    voice_labels = np.repeat(np.arange(7), 3)
    voice_clips = [rng.dirichlet(np.ones(7), rng.integers(2, 6)) for _ in voice_labels]
    return face_probs, face_labels, voice_clips, voice_labels


def test_sequences_carry_both_modalities_and_their_flags():
    rng = np.random.default_rng(0)
    x, y = make_sequences(*toy_sources(rng), count=500, options=PairingOptions(steps=8), seed=1)
    assert x.shape == (500, 8, 16) and set(np.unique(y)) == set(range(7))
    face_on, voice_on = x[:, :, 7], x[:, :, 15]
    assert set(np.unique(face_on)) == {0.0, 1.0} and set(np.unique(voice_on)) == {0.0, 1.0}
    np.testing.assert_allclose(x[:, :, 0:7].sum(-1), face_on, atol=1e-5)     # probabilities, or zeros when absent
    np.testing.assert_allclose(x[:, :, 8:15].sum(-1), voice_on, atol=1e-5)
    assert 0.1 < 1 - face_on.all(1).mean() < 0.6                              # modality dropout happens
    assert not remove_modality(x, "face")[:, :, 0:8].any()
    assert np.array_equal(remove_modality(x, "face")[:, :, 8:], x[:, :, 8:])


def test_fusion_lstm_converts_to_one_mappable_int8_graph(tmp_path):
    rng = np.random.default_rng(2)
    model = build_fusion_lstm(FusionSpec(steps=8))
    model.save(tmp_path / "fusion.keras")
    x, _ = make_sequences(*toy_sources(rng), count=200, seed=3)
    np.savez(tmp_path / "calibration.npz", x=x)
    out = tmp_path / "fusion_int8.tflite"
    card = convert(tmp_path / "fusion.keras", out, ConvertOptions(quant="int8", input_kind="features", task="fusion"),
                   calibration=tmp_path / "calibration.npz")
    assert card.input.shape == [1, 8, 16] and card.input.dtype == "int8"
    report = check_model(out)
    ops = [op.op for op in report.ops]
    assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1 and "BATCH_MATMUL" not in ops
    assert report.fully_mappable


@pytest.mark.parametrize("steps", [8])
def test_training_and_report_on_real_model_outputs(tmp_path, small_faces, steps):
    from affectlite.classifiers.expression import BUNDLED_MODEL as FACE
    from affectlite.classifiers.speech import BUNDLED_MODEL as SPEECH
    from affectlite_convert.data.faces import load_face_npz
    from affectlite_convert.data.speech import load_speech
    from affectlite_convert.training.train_fusion import FusionRecipe, split_faces, train_fusion
    from conftest import SHARED

    faces_train, faces_eval = split_faces(load_face_npz(small_faces))
    root = SHARED / "data/speech/ravdess"
    recipe = FusionRecipe(epochs=2, train_sequences=600, eval_sequences=300)
    final, figures, (x_eval, _) = train_fusion(faces_train, faces_eval, load_speech(root, [17, 18]), load_speech(root, [19]),
                                               FACE, SPEECH, tmp_path / "run", recipe, verbose=0)
    assert final.exists() and x_eval.shape == (300, 8, 16)
    assert set(figures) == {"face_only", "voice_only", "late_fusion", "lstm", "lstm_face_removed", "lstm_voice_removed"}
    assert all(0.0 <= v <= 1.0 for v in figures.values())
    assert figures["face_only"] > 1 / 7 and figures["voice_only"] > 1 / 7      # the real models are better than chance
