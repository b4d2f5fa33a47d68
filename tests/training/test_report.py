"""The printed run summary says when the FLOPs ratio misses flops_target."""

from dmnn_keras.training.report import summary, table_row

REPORT = {
    "model": "dmnn_resnet", "dataset": "cifar10", "split": "test", "eval_examples": 10,
    "top1_accuracy": 0.8, "top1_error": 20.0, "params": 1000, "flops": 1000,
    "executed_flops_mean": 620.0, "flops_ratio": 0.62, "execution_rates": {"conv2_block1": 0.6},
}


def summary_of(flops_ratio, flags):
    report = dict(REPORT, flops_ratio=flops_ratio, executed_flops_mean=1000 * flops_ratio,
                  flags=flags)
    report["table_row"] = table_row(report)
    return summary(report, "runs/x")


def test_summary_warns_when_the_flops_ratio_misses_the_target_by_more_than_0_03():
    assert "WARNING: FLOPs ratio 0.620 misses flops_target 0.5 by +0.120" in summary_of(
        0.62, {"flops_target": 0.5})
    assert "misses flops_target 0.5 by -0.040" in summary_of(0.46, {"flops_target": 0.5})
    assert "misses" not in summary_of(0.525, {"flops_target": 0.5})
    assert "misses" not in summary_of(0.62, {})  # evaluate.py without the run's config.json


def test_summary_puts_the_twin_the_dmnn_and_the_exits_beside_them_in_one_table():
    twin = dict(model="resnet", epochs=6, top1_accuracy=0.7155, flops=7_330_000,
                train_images=300_000, train_seconds=400.0)
    latency = dict(images=200, mean_ms=0.79, twin_mean_ms=1.0, mean_ratio=0.79,
                   median_ratio=0.76)
    exits = dict(output_dir="runs/x/exits", early_exits=["conv3_block1", "conv4_block1"],
                 top1_accuracy=0.719, executed_flops_mean=4_470_000, total_train_images=500_000,
                 total_train_seconds=633.0,
                 latency_vs_twin=dict(latency, median_ratio=0.5, mean_ratio=0.62))
    report = dict(REPORT, top1_accuracy=0.7035, executed_flops_mean=4_400_000, flags={},
                  static_twin=twin, latency_vs_twin=latency, total_train_images=500_000,
                  total_train_seconds=620.0, exits_beside=exits, eval_examples=10000)
    report["table_row"] = table_row(report)
    text = summary(report, "runs/x")
    assert "| static twin resnet | 71.55% | 7.33 M (1.00x) | 1.00x / 1.00x | 300,000, 400 s |" in text
    assert "| DMNN dmnn_resnet | 70.35% | 4.40 M (0.60x) | 0.76x / 0.79x | 500,000, 620 s |" in text
    assert ("| early exits after conv3_block1, conv4_block1 | 71.90% | 4.47 M (0.61x) | "
            "0.50x / 0.62x | 500,000, 633 s |") in text
    del report["exits_beside"]
    assert "early exits" not in summary(report, "runs/x")


def test_summary_counts_the_fixed_gates():
    report = dict(REPORT, flags={}, fixed_gates={"conv2_block1": [1.0, None],
                                                 "conv3_block1": [0.0, 1.0]})
    report["table_row"] = table_row(report)
    assert "fixed gates (fix_constant_gates): 3/4 constants" in summary(report, "runs/x")
    assert "fixed gates" not in summary_of(0.62, {})


def test_summary_puts_the_run_beside_the_static_model_it_started_from():
    given = dict(model_path="resnet_cifar10", model="resnet_cifar10", top1_accuracy=0.7972,
                 flops=7_330_000)
    latency = dict(images=200, mean_ms=0.84, twin_mean_ms=1.0, mean_ratio=0.84,
                   median_ratio=0.82)
    report = dict(REPORT, top1_accuracy=0.8098, executed_flops_mean=4_385_000, flags={},
                  started_from=given, latency_vs_twin=latency)
    report["table_row"] = table_row(report)
    text = summary(report, "runs/x")
    assert ("beside the static model it started from, resnet_cifar10 (trained elsewhere): top-1 "
            "80.98% vs 79.72% (+1.26 points), MACs/image 0.60x the twin's 7,330,000") in text
    assert "training cost" not in text  # the given model's training is not the run's
    assert "0.840 ms vs the twin's 1.000 ms per image (0.84x; medians 0.82x)" in text
