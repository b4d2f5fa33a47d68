"""The whole recipe under MirroredStrategy over two logical CPUs (multi-worker: test_multi_worker.py)."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recipe_helpers import run  # noqa: E402

pytestmark = pytest.mark.slow  # 40 s or more per file: run first (tests/conftest.py)

MIRRORED_WARM_START = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from dmnn_keras.training import run_training
report = run_training("tiny", strategy="mirrored", epochs=2, max_train_examples=128,
                      batch_size=32, max_eval_examples=32, figures=False, output_dir=sys.argv[1],
                      teacher_epochs=1, block_split="partition", groups=2,
                      target_schedule_epochs=1.0, target_correction_batches=1, noise_off_epochs=1,
                      calibrate_flops_batches=2, fix_constant_gates=True,
                      compare_exits=("conv3_block1",), flops_target=0.8)
print("REPORT" + json.dumps({k: report[k] for k in ("flags", "steps_per_epoch", "static_twin",
                                                     "total_train_images",
                                                     "final_train_metrics", "target_corrections",
                                                     "flops", "exits_beside", "fixed_gates")}))
"""


def test_warm_started_distilled_run_under_mirrored_strategy(tmp_path):
    """The whole recipe (twin, warm start, distillation, schedules, exits beside) over two replicas."""
    result = run(["-c", MIRRORED_WARM_START, str(tmp_path / "run")], timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.split("REPORT", 1)[1])
    # The DMNN starts from the twin: its controllers are new, not kept from it.
    assert (f"init_from={tmp_path / 'run' / 'teacher' / 'model.keras'}: every weight kept "
            "(backbone; the gate controllers start fresh)") in result.stdout
    assert report["flags"]["num_replicas"] == 2
    # Global batch 32 split over 2 replicas: 128 examples -> 4 steps, lr scaled by 32 / 256.
    assert report["steps_per_epoch"] == 4
    assert report["flags"]["scaled_learning_rate"] == 0.1 * 32 / 256
    assert report["static_twin"]["model"] == "resnet" and report["static_twin"]["epochs"] == 1
    # 4 steps of 32 images: the DMNN's 2 epochs plus the twin's 1.
    assert report["total_train_images"] == 3 * 128
    assert report["final_train_metrics"]["flops_ratio"] > 0
    # Corrected at the end of both epochs (the annealing ends with the first) from the epoch's
    # training ratio and the inference ratio on clean images.
    corrections = report["target_corrections"]
    assert [c[0] for c in corrections] == [0, 1]
    for _, trained, inferred, target, shift in corrections:
        assert shift == 0.0 and 0 < inferred <= 1 and target == pytest.approx(
            min(max(report["flags"]["flops_target"] + trained - inferred, 0.05), 1.0), abs=1e-5)
    assert corrections[-1][1] == pytest.approx(report["final_train_metrics"]["flops_ratio"])
    assert (tmp_path / "run" / "teacher" / "model.keras").exists()
    assert (tmp_path / "run" / "model.keras").exists()
    # The twin with exits, trained beside the DMNN from the same twin, charged for it too, and
    # aimed at the DMNN's MACs (its target x its full MACs, over the exits model's full MACs).
    exits = report["exits_beside"]
    assert exits["output_dir"] == str(tmp_path / "run" / "exits")
    assert exits["early_exits"] == ["conv3_block1"] and exits["model"] == "resnet"
    assert exits["total_train_images"] == 3 * 128
    with open(tmp_path / "run" / "exits" / "report.json") as f:
        exits_report = json.load(f)
    assert exits_report["static_twin"]["model_path"] == str(tmp_path / "run" / "teacher" /
                                                            "model.keras")
    assert exits_report["flags"]["num_replicas"] == 2
    assert exits["flops_target"] == pytest.approx(
        report["flags"]["flops_target"] * report["flops"] / exits_report["flops"], abs=1e-4)
    assert not (tmp_path / "run" / "exits" / "teacher").exists()
    # The gates fixed on the calibration batches after training are the saved model's.
    import keras

    import dmnn_keras  # noqa: F401  (registers the layers for load_model)
    from dmnn_keras.export.block_converters import known_gates  # what the TFLite export reads

    model = keras.models.load_model(tmp_path / "run" / "model.keras", compile=False)
    saved = {block.name: list(known_gates(controller)) for controller, block in model.gated_blocks}
    assert report["fixed_gates"] == saved and any(
        v is not None for values in saved.values() for v in values)
