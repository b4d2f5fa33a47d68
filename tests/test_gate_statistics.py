"""gate_dynamics on hand-made gates with known answers, and its field in the run report."""

import json
import math

import numpy as np
import pytest

from dmnn_keras.gate_statistics import gate_dynamics
from dmnn_keras.training import report as report_lib

# 4 images, 2 blocks, 5 gates. Constant: block a gate 0 (always on), block b
# gate 1 (always off). Images 1 and 2 have different patterns but the same
# cost (up to float noise); image 3 repeats image 0's pattern.
GATES = {
    "a": np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0], [1, 1, 0]], dtype=np.float32),
    "b": np.array([[1, 0], [0, 0], [0, 0], [1, 0]], dtype=np.float32),
}
EXECUTED = np.array([80.0, 60.0000001, 59.9999999, 80.0])
FULL = 100
# Image 0 confidently correct, 1 misclassified, 2 correct but unsure
# (p = 0.731), 3 confidently correct.
LOGITS = np.array([[5.0, 0.0], [0.0, 5.0], [1.0, 0.0], [0.0, 5.0]])
LABELS = np.array([0, 0, 0, 1])


def test_known_answers():
    stats = gate_dynamics(GATES, EXECUTED, FULL)
    assert stats["distinct_costs"] == 2
    assert stats["distinct_patterns"] == 3
    assert (stats["constant_gates"], stats["total_gates"]) == (2, 5)
    assert stats["constant_gate_share"] == pytest.approx(0.4)
    assert stats["flops_ratio_std"] == pytest.approx(0.1)  # ratios 0.8, 0.6, 0.6, 0.8
    assert stats["flops_ratio_min"] == pytest.approx(0.6)
    assert stats["flops_ratio_max"] == pytest.approx(0.8)
    for key in ("flops_ratio_correct_confident", "flops_ratio_misclassified",
                "correct_confident_count", "misclassified_count"):
        assert stats[key] is None, key


def test_fully_dynamic_gates_have_no_constant_gate():
    gates = {"a": np.array([[1, 0], [0, 1], [1, 1]])}
    stats = gate_dynamics(gates, [50.0, 50.0, 90.0], 100)
    assert (stats["constant_gates"], stats["constant_gate_share"]) == (0, 0.0)
    assert (stats["distinct_patterns"], stats["distinct_costs"]) == (3, 2)
    assert stats["flops_ratio_std"] == pytest.approx(math.sqrt(((0.4 / 3) ** 2 * 2 + (0.8 / 3) ** 2) / 3))


def test_correct_confident_vs_misclassified():
    stats = gate_dynamics(GATES, EXECUTED, FULL, LOGITS, LABELS)
    assert stats["confident"] == 0.9
    assert stats["correct_confident_count"] == 2  # images 0 and 3; image 2 is unsure
    assert stats["flops_ratio_correct_confident"] == pytest.approx(0.8)
    assert stats["misclassified_count"] == 1
    assert stats["flops_ratio_misclassified"] == pytest.approx(0.6)
    # A lower threshold lets the unsure correct image in.
    loose = gate_dynamics(GATES, EXECUTED, FULL, LOGITS, LABELS, confident=0.5)
    assert loose["correct_confident_count"] == 3
    assert loose["flops_ratio_correct_confident"] == pytest.approx((0.8 + 0.6 + 0.8) / 3)


def test_empty_groups_are_none():
    right = gate_dynamics(GATES, EXECUTED, FULL, LOGITS, np.array([0, 1, 0, 1]))
    assert (right["misclassified_count"], right["flops_ratio_misclassified"]) == (0, None)
    unsure = gate_dynamics(GATES, EXECUTED, FULL, LOGITS / 100, LABELS)
    assert (unsure["correct_confident_count"], unsure["flops_ratio_correct_confident"]) == (0, None)


def test_static_model():
    stats = gate_dynamics({}, np.full(3, 1234.0), 1234, LOGITS[:3], LABELS[:3])
    assert stats["distinct_costs"] == 1 and stats["distinct_patterns"] == 1
    assert (stats["constant_gates"], stats["total_gates"], stats["constant_gate_share"]) == (0, 0, 0.0)
    assert (stats["flops_ratio_std"], stats["flops_ratio_min"], stats["flops_ratio_max"]) == (0.0, 1.0, 1.0)
    assert stats["correct_confident_count"] == 1 and stats["misclassified_count"] == 1


def test_result_is_plain_json():
    stats = gate_dynamics(GATES, EXECUTED, np.int64(FULL), LOGITS, LABELS)
    assert all(v is None or type(v) in (int, float) for v in stats.values()), stats
    assert json.loads(json.dumps(stats)) == stats


@pytest.mark.parametrize("kwargs, match", [
    ({"gates": [GATES["a"]]}, "gates must be a dict"),
    ({"gates": {"a": GATES["a"][:3]}}, "same N images"),
    ({"gates": {"a": GATES["a"][:, 0]}}, r"gates\['a'\] must be a \[N, groups\]"),
    ({"executed_flops": EXECUTED[:, None]}, "executed_flops must be a non-empty"),
    ({"executed_flops": []}, "executed_flops must be a non-empty"),
    ({"executed_flops": [80.0, np.nan, 60.0, 80.0]}, "executed_flops must be finite"),
    ({"full_flops": 0}, "full_flops must be a positive number"),
    ({"full_flops": [100]}, "full_flops must be a positive number"),
    ({"confident": 0.0}, r"confident must be in \(0, 1\]. Received: confident=0.0"),
    ({"confident": 1.5}, r"confident must be in \(0, 1\]"),
    ({"labels": None}, "logits and labels must be given together"),
    ({"logits": LOGITS[:3]}, r"logits must be a \[N, classes\] array with N = 4"),
    ({"labels": LABELS[:, None]}, r"labels must be a \[N\] array with N = 4"),
])
def test_errors(kwargs, match):
    args = {"gates": GATES, "executed_flops": EXECUTED, "full_flops": FULL,
            "logits": LOGITS, "labels": LABELS, **kwargs}
    with pytest.raises(ValueError, match=match):
        gate_dynamics(**args)


def _evaluation(gates, executed, full):
    return {
        "profile": {
            "params": 1000, "controller_params": 10, "flops": full, "always_on_flops": full // 2,
            "executed_flops": executed, "executed_flops_mean": float(np.mean(executed)),
            "flops_ratio": float(np.mean(executed) / full),
            "execution_rates": {name: float(g.mean()) for name, g in gates.items()},
            "path_rates": {name: g.mean(axis=0).tolist() for name, g in gates.items()},
        },
        "gates": gates, "logits": LOGITS, "labels": LABELS, "categories": None, "accuracy": 0.5,
    }


def test_report_has_gate_dynamics(tmp_path):
    report = report_lib.build_report(_evaluation(GATES, EXECUTED, FULL), "m", "cifar10", "test")
    assert report["gate_dynamics"] == gate_dynamics(GATES, EXECUTED, FULL, LOGITS, LABELS)
    json.loads(open(report_lib.write_report(report, str(tmp_path))).read())
    text = report_lib.summary(report, str(tmp_path))
    assert ("gate dynamics: 2 distinct per-image costs, 3 gate patterns, 2/5 gates constant, "
            "FLOPs ratio std 0.100 (min 0.60, max 0.80)") in text
    assert ("FLOPs ratio of confidently correct images (p >= 0.9) 0.80 (2 images), "
            "misclassified 0.60 (1 image)") in text


def test_static_report_prints_no_gate_dynamics(tmp_path):
    report = report_lib.build_report(_evaluation({}, np.full(4, 100.0), FULL), "m", "cifar10", "test")
    assert report["gate_dynamics"]["total_gates"] == 0
    assert "gate dynamics" not in report_lib.summary(report, str(tmp_path))
