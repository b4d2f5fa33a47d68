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
