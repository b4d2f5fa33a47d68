"""run_training on CIFAR-100 (mixed_bfloat16, in-place distillation) and ImageNet pipelines from
tfds.testing.mock_data."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from dmnn_keras.training import run_training

pytestmark = pytest.mark.slow  # 40 s or more per file: run first (tests/conftest.py)


@pytest.mark.parametrize("dataset, image_size, num_categories, mixed_precision, inplace", [
    # One run also covers bfloat16 training on CPU, and in-place distillation with them.
    ("cifar100", None, 20, "mixed_bfloat16", 1.0),
    ("imagenet2012", 64, 58, "none", 0.0),
])
def test_one_tiny_step_with_category_supervision(tmp_path, monkeypatch, dataset, image_size,
                                                 num_categories, mixed_precision, inplace):
    import keras

    from dmnn_keras import DynamicModel

    attached = []
    distill_in_place = DynamicModel.distill_in_place
    monkeypatch.setattr(DynamicModel, "distill_in_place", lambda model, *args: (
        attached.append(args), distill_in_place(model, *args))[1])

    before = keras.mixed_precision.dtype_policy().name
    traced = []  # variables created while tracing a tf.function: tf.function would trace twice

    def record(next_creator, **kwargs):
        if tf.inside_function():
            traced.append(kwargs.get("name"))
        return next_creator(**kwargs)

    with tfds.testing.mock_data(num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE), \
            tf.variable_creator_scope(record):
        report = run_training(
            "tiny", dataset=dataset, image_size=image_size, category_supervision=True,
            max_train_examples=8, batch_size=8, max_eval_examples=8, output_dir=str(tmp_path),
            mixed_precision=mixed_precision, inplace_distill_weight=inplace, verbose=0,
        )
    assert attached == ([(inplace, 4.0)] if inplace else [])
    assert keras.mixed_precision.dtype_policy().name == before  # restored after a mixed run
    assert traced == []  # the optimizer (and every other variable) built before fit
    assert report["flags"]["mixed_precision"] == mixed_precision
    assert report["steps_per_epoch"] == 1 and report["eval_examples"] == 8
    assert report["dataset"] == dataset and report["flags"]["category_supervision"]
    assert np.isfinite(report["final_train_metrics"]["loss"])
    model_classes = {"cifar100": 100, "imagenet2012": 1000}[dataset]
    assert 0.0 <= report["top1_error"] <= 100.0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["dataset"] == dataset
    model = keras.models.load_model(tmp_path / "model.keras")
    assert model.num_classes == model_classes and model.num_categories == num_categories
    for name in ("flops_histogram.png", "execution_heatmap.png", "flops_extremes.png"):
        assert (tmp_path / name).exists()

