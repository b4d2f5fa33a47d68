"""The run report: `report.json` and the paper-style markdown table row.

`report.json` fields:
  * `top1_error` (percent, as in the papers' tables), `top1_accuracy` (fraction);
  * `params`, `controller_params`, `flops` (MACs per image with every
    sub-block on), `always_on_flops`, `executed_flops_mean` (MACs actually run,
    averaged over the eval images), `flops_ratio` (executed / full);
  * `execution_rates` (block -> fraction of its sub-blocks run) and
    `path_rates` (block -> rate of each sub-block);
  * `executed_flops_percentiles` (min, 5, 50, 95, max);
  * `gate_dynamics`: how much the gates vary from image to image
    (`dmnn_keras.gate_statistics.gate_dynamics`: distinct per-image costs and
    gate patterns, constant gates, spread of the per-image FLOPs ratio, mean
    ratio of confidently correct vs misclassified images);
  * `static_twin` (the twin the run trained first and started from) or
    `started_from` (the static `init_from` model, trained elsewhere, on the
    same eval images: `model_path`, `model`, `top1_accuracy`, `flops`), and
    `latency_vs_twin` (TFLite batch-1 latency of both);
  * with `compare_exits`, `exits_beside`: the early-exit network trained
    from the same twin (`output_dir`, `early_exits`, `flops_target`,
    top-1, MACs, `latency_vs_twin`, training cost), printed beside the
    twin and the DMNN;
  * `eval_examples`, `model`, `dataset`, `split`, `flags` (the resolved
    config), `wall_time_seconds` and, for training runs, `train_seconds` and
    `epoch_seconds`;
  * `figures`: file names of the PNG figures; `table_row`: the markdown row.
"""

import json
import os

import numpy as np

from dmnn_keras.gate_statistics import gate_dynamics

REPORT_FILE = "report.json"
FLOPS_TARGET_TOLERANCE = 0.03  # a larger miss of `flops_target` is called out in the summary
TABLE_HEADER = "| Model | Top-1 Err. (%) | Params | FLOPs | FLOPs ratio |\n|---|---|---|---|---|"


def human(count):
    """`25.56M`, `4.11G`, `553.6K`."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.2f}{unit}"
    return str(int(count))


def table_row(report):
    """A markdown row in the paper's format: Top-1 Err., Params, FLOPs (executed), FLOPs ratio."""
    return (f"| {report['model']} | {report['top1_error']:.2f} | {human(report['params'])} | "
            f"{human(report['executed_flops_mean'])} | {report['flops_ratio']:.2f} |")


def build_report(evaluation, model_name, dataset, split, flags=None, **extra):
    """The report dict of an evaluation (see module docstring)."""
    stats = evaluation["profile"]
    executed = np.asarray(stats["executed_flops"])
    report = {
        "model": model_name,
        "dataset": dataset,
        "split": split,
        "eval_examples": int(len(evaluation["labels"])),
        "top1_accuracy": evaluation["accuracy"],
        "top1_error": 100.0 * (1.0 - evaluation["accuracy"]),
        "params": stats["params"],
        "controller_params": stats["controller_params"],
        "flops": stats["flops"],
        "always_on_flops": stats["always_on_flops"],
        "executed_flops_mean": stats["executed_flops_mean"],
        "flops_ratio": stats["flops_ratio"],
        "executed_flops_percentiles": {
            str(q): float(np.percentile(executed, q)) for q in (0, 5, 50, 95, 100)
        },
        "execution_rates": stats["execution_rates"],
        "path_rates": stats["path_rates"],
        "gate_dynamics": gate_dynamics(
            evaluation["gates"], executed, stats["flops"], evaluation["logits"], evaluation["labels"]),
        "flags": flags or {},
    }
    report.update(extra)
    report["table_row"] = table_row(report)
    return report


def write_report(report, output_dir):
    """Writes `report.json`; returns its path."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, REPORT_FILE)
    with open(path, "w") as f:
        json.dump(report, f, indent=2, default=float)
    return path


def _ratio(value, count):
    """`0.55 (812 images)`, or `- (0 images)` for an empty group."""
    return f"{'-' if value is None else f'{value:.2f}'} ({count} image{'' if count == 1 else 's'})"


def gate_dynamics_lines(dynamics):
    """Readable lines of a report's `gate_dynamics` (none for a model without gates)."""
    if not dynamics or not dynamics["total_gates"]:
        return []
    lines = [
        f"  gate dynamics: {dynamics['distinct_costs']} distinct per-image costs, "
        f"{dynamics['distinct_patterns']} gate patterns, "
        f"{dynamics['constant_gates']}/{dynamics['total_gates']} gates constant, "
        f"FLOPs ratio std {dynamics['flops_ratio_std']:.3f} "
        f"(min {dynamics['flops_ratio_min']:.2f}, max {dynamics['flops_ratio_max']:.2f})"
    ]
    if dynamics["correct_confident_count"] is not None:
        lines.append(
            f"  FLOPs ratio of confidently correct images (p >= {dynamics['confident']:g}) "
            f"{_ratio(dynamics['flops_ratio_correct_confident'], dynamics['correct_confident_count'])}, "
            f"misclassified {_ratio(dynamics['flops_ratio_misclassified'], dynamics['misclassified_count'])}"
        )
    return lines


def flops_target_lines(report):
    """A warning when a gated model's FLOPs ratio misses its `flops_target` by more than the tolerance."""
    target = report.get("flags", {}).get("flops_target")
    if target is None or not report["execution_rates"]:
        return []
    miss = report["flops_ratio"] - target
    if abs(miss) <= FLOPS_TARGET_TOLERANCE:
        return []
    return [
        f"  WARNING: FLOPs ratio {report['flops_ratio']:.3f} misses flops_target {target:g} by "
        f"{miss:+.3f} (more than {FLOPS_TARGET_TOLERANCE:g}); see docs/troubleshooting.md"
    ]


def static_twin_lines(report):
    """The run beside the static twin it was warm-started from (if any): trained by the run
    (`static_twin`, charged in the training cost) or given as `init_from` (`started_from`)."""
    twin, given = report.get("static_twin"), report.get("started_from")
    if not (twin or given):
        return []
    beside = (f"its static twin {twin['model']} ({twin['epochs']} epochs, the teacher)" if twin
              else f"the static model it started from, {given['model_path']} (trained elsewhere)")
    twin = twin or given
    return [
        f"  beside {beside}: "
        f"top-1 {100 * report['top1_accuracy']:.2f}% vs {100 * twin['top1_accuracy']:.2f}% "
        f"({100 * (report['top1_accuracy'] - twin['top1_accuracy']):+.2f} points), "
        f"MACs/image {report['executed_flops_mean'] / twin['flops']:.2f}x the twin's "
        f"{twin['flops']:,}",
    ] + ([
        f"  training cost, teacher included: {report['total_train_images']:,} images, "
        f"{report['total_train_seconds']:.0f} s",
    ] if "total_train_images" in report else []) + ([
        f"  TFLite batch-1 latency, 1 thread, learned gates, {latency['images']} test images: "
        f"{latency['mean_ms']:.3f} ms vs the twin's {latency['twin_mean_ms']:.3f} ms per image "
        f"({latency['mean_ratio']:.2f}x; medians {latency['median_ratio']:.2f}x)"
    ] if (latency := report.get("latency_vs_twin")) else [])


def exits_beside_lines(report):
    """The twin, this DMNN and its `compare_exits` network side by side (a markdown table)."""
    exits, twin = report.get("exits_beside"), report.get("static_twin")
    if not (exits and twin):
        return []

    def row(name, top1, macs, latency, images, seconds):
        speed = "-" if latency is None else (
            f"{latency['median_ratio']:.2f}x / {latency['mean_ratio']:.2f}x")
        return (f"| {name} | {100 * top1:.2f}% | {macs / 1e6:.2f} M ({macs / twin['flops']:.2f}x) "
                f"| {speed} | {images:,}, {seconds:.0f} s |")

    return [
        "",
        f"The twin and the two dynamic networks built from it ({report['eval_examples']} "
        f"{report['split']} images; latency: TFLite batch-1, 1 thread, median / mean per image "
        "against the twin, each network paired with the twin in one measurement; training cost "
        "with the twin's epochs):",
        "| network | top-1 | MACs / image (x twin) | latency (x twin) | training images, time |",
        "|---|---|---|---|---|",
        row(f"static twin {twin['model']}", twin["top1_accuracy"], twin["flops"],
            dict(median_ratio=1.0, mean_ratio=1.0), twin["train_images"], twin["train_seconds"]),
        row(f"DMNN {report['model']}", report["top1_accuracy"], report["executed_flops_mean"],
            report.get("latency_vs_twin"), report["total_train_images"],
            report["total_train_seconds"]),
        row(f"early exits after {', '.join(exits['early_exits'])}", exits["top1_accuracy"],
            exits["executed_flops_mean"], exits["latency_vs_twin"], exits["total_train_images"],
            exits["total_train_seconds"]),
        f"(the early-exit network: {exits['output_dir']})",
    ]


def summary(report, output_dir):
    """The text printed at the end of a run."""
    lines = [
        f"Model {report['model']} on {report['dataset']}/{report['split']} "
        f"({report['eval_examples']} images)",
        f"  top-1 accuracy {100 * report['top1_accuracy']:.2f}%  (error {report['top1_error']:.2f}%)",
        f"  params {report['params']:,}  full FLOPs {report['flops']:,} MACs  "
        f"executed {report['executed_flops_mean']:,.0f} MACs/image  "
        f"FLOPs ratio {report['flops_ratio']:.3f}",
    ] + flops_target_lines(report)
    if report["execution_rates"]:
        rates = "  ".join(f"{k}={v:.2f}" for k, v in report["execution_rates"].items())
        lines.append(f"  execution rates: {rates}")
    lines += gate_dynamics_lines(report.get("gate_dynamics"))
    if report.get("fixed_gates"):
        values = [v for block in report["fixed_gates"].values() for v in block]
        fixed = sum(v is not None for v in values)
        lines.append(f"  fixed gates (fix_constant_gates): {fixed}/{len(values)} constants, run "
                     "without IF ops in TFLite")
    lines += static_twin_lines(report)
    lines += exits_beside_lines(report)
    if "wall_time_seconds" in report:
        lines.append(f"  wall time {report['wall_time_seconds']:.0f} s")
    lines += ["", TABLE_HEADER, report["table_row"], "",
              f"Report: {os.path.join(output_dir, REPORT_FILE)}"]
    for name in report.get("figures", []):
        lines.append(f"Figure: {os.path.join(output_dir, name)}")
    return "\n".join(lines)
