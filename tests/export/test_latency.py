"""compare_latency: every image on every model in each round, the first model rotating."""

import numpy as np
import pytest

from dmnn_keras.export.latency import compare_latency


class _Recorder:
    """Stands in for LiteRT's Interpreter; records which model runs which image, in order."""

    calls = []

    def __init__(self, model_path, num_threads):
        self.path = model_path

    def get_signature_runner(self, name):
        assert name == "serving_default"

        def run(images):
            _Recorder.calls.append((self.path, int(images[0, 0, 0, 0])))
            return {}
        return run


def test_each_image_runs_on_every_model_with_the_first_model_rotating(monkeypatch):
    import ai_edge_litert.interpreter

    monkeypatch.setattr(ai_edge_litert.interpreter, "Interpreter", _Recorder)
    _Recorder.calls = []
    images = np.zeros((4, 2, 2, 3), np.float32) + np.arange(4, dtype=np.float32)[:, None, None, None]
    paths = ["a.tflite", "b.tflite", "c.tflite"]
    results = compare_latency(paths, images, rounds=2, warmup=1)
    timed = _Recorder.calls[3:]  # after one warm-up image per model
    assert len(timed) == 2 * 4 * 3
    firsts = []
    for start in range(0, len(timed), 3):  # each image, by every model in turn
        group = timed[start:start + 3]
        assert {path for path, _ in group} == set(paths)
        assert len({image for _, image in group}) == 1
        firsts.append(group[0][0])
    # the model going first moves on with every image and every round: no model always first
    assert firsts == ["a.tflite", "b.tflite", "c.tflite", "a.tflite",
                      "b.tflite", "c.tflite", "a.tflite", "b.tflite"]
    assert [len(r["per_image_ms"]) for r in results] == [4, 4, 4]
    assert all(r["median_ms"] >= 0 for r in results)


def test_rounds_must_be_a_positive_int():
    with pytest.raises(ValueError, match=r"rounds must be an int >= 1\. Received: rounds=0"):
        compare_latency(["a.tflite"], np.zeros((1, 2, 2, 3), np.float32), rounds=0)
