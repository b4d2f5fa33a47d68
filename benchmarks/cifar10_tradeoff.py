"""Accuracy / FLOPs / training-time trade-off of DMNN against its static twin on CIFAR-10.

    python -m benchmarks.cifar10_tradeoff                 # the recorded run
    python -m benchmarks.cifar10_tradeoff --epochs 1 --max_train_examples 512 --no_write   # smoke

Trains, with the same data, epochs, schedule and seed (preset "cpu"):
  * the static small ResNet (`resnet`, width 0.25, one bottleneck per stage);
  * the same network as DMNN (`dmnn_resnet`, 4 sub-blocks per block) at every
    `--flops_targets` value with the default resource-loss weight;
  * DMNN at flops_target 0.5 for every `--loss_weights` value (the sweep that
    justifies `DEFAULT_RESOURCE_LOSS_WEIGHT`).
Records top-1 on the CIFAR-10 test set, the executed FLOPs ratio, the wall time
per training epoch (first epoch excluded: it includes tracing) and the step
time relative to the static model's, and writes the section
"cifar10_tradeoff" of BENCHMARKS.md. Every run keeps its report under
`--output_root/<run>/report.json`; a rerun reuses reports whose flags match.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.report import write_section  # noqa: E402
from dmnn_keras.models.gating import DEFAULT_RESOURCE_LOSS_WEIGHT  # noqa: E402
from dmnn_keras.training import resolve_config, run_training  # noqa: E402

SECTION = "cifar10_tradeoff"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--max_train_examples", type=int, default=10000)
    parser.add_argument("--max_eval_examples", type=int, default=None)
    parser.add_argument("--flops_targets", default="0.3,0.5,0.7")
    parser.add_argument("--loss_weights", default="0.5,8")
    parser.add_argument("--output_root", default="runs/cifar10_tradeoff")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no_write", action="store_true", help="do not touch BENCHMARKS.md")
    return parser.parse_args(argv)


def run_specs(args):
    """(run name, TrainConfig overrides) of every run, static first."""
    specs = [("static", dict(model="resnet"))]
    for target in [float(t) for t in args.flops_targets.split(",") if t]:
        specs.append((f"dmnn_t{target}_w{DEFAULT_RESOURCE_LOSS_WEIGHT}",
                      dict(model="dmnn_resnet", flops_target=target,
                           resource_loss_weight=DEFAULT_RESOURCE_LOSS_WEIGHT)))
    for weight in [float(w) for w in args.loss_weights.split(",") if w]:
        if weight != DEFAULT_RESOURCE_LOSS_WEIGHT:
            specs.append((f"dmnn_t0.5_w{weight}",
                          dict(model="dmnn_resnet", flops_target=0.5, resource_loss_weight=weight)))
    return specs


def run_one(name, overrides, args):
    config = resolve_config(
        "cpu", epochs=args.epochs, max_train_examples=args.max_train_examples,
        max_eval_examples=args.max_eval_examples, seed=args.seed, figures=False, verbose=2,
        output_dir=os.path.join(args.output_root, name), **overrides,
    )
    path = os.path.join(config.output_dir, "report.json")
    if os.path.exists(path):
        with open(path) as f:
            report = json.load(f)
        flags = {k: v for k, v in report.get("flags", {}).items() if k in config.to_dict()}
        expected = json.loads(json.dumps(config.to_dict()))
        if flags == expected and len(report.get("epoch_seconds", [])) == args.epochs:
            print(f"[{name}] reusing {path}", flush=True)
            return report
    import keras

    keras.backend.clear_session()
    print(f"[{name}] training {overrides}", flush=True)
    return run_training(config)


def epoch_time(report):
    """Median wall time of the epochs after the first (all epochs if only one)."""
    import numpy as np

    seconds = report["epoch_seconds"]
    return float(np.median(seconds[1:] if len(seconds) > 1 else seconds))


def table(results):
    static = results["static"]
    static_step = epoch_time(static) / static["steps_per_epoch"]
    rows = ["| Run | flops_target | λ | Top-1 (%) | Δ top-1 vs static (pts) | FLOPs ratio | "
            "Execution rates | s / epoch | Step time vs static |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, report in results.items():
        flags = report["flags"]
        gated = flags["model"] != "resnet"
        step = epoch_time(report) / report["steps_per_epoch"]
        rates = ", ".join(f"{v:.2f}" for v in report["execution_rates"].values()) or "-"
        rows.append(
            f"| {name} | {flags['flops_target'] if gated else '-'} | "
            f"{flags['resource_loss_weight'] if gated else '-'} | {100 * report['top1_accuracy']:.2f} | "
            f"{100 * (report['top1_accuracy'] - static['top1_accuracy']):+.2f} | "
            f"{report['flops_ratio']:.3f} | {rates} | {epoch_time(report):.1f} | "
            f"{step / static_step:.2f}x |"
        )
    return "\n".join(rows)


def verdict(results):
    static = results["static"]
    static_step = epoch_time(static) / static["steps_per_epoch"]
    lines = []
    cheap = {n: r for n, r in results.items() if n != "static" and r["flops_ratio"] <= 0.6}
    if cheap:
        name, best = max(cheap.items(), key=lambda kv: kv[1]["top1_accuracy"])
        gap = 100 * (static["top1_accuracy"] - best["top1_accuracy"])
        lines.append(
            f"- Accuracy target (DMNN at FLOPs ratio <= 0.6 within 1.0 point of static): best such run "
            f"`{name}` (ratio {best['flops_ratio']:.3f}) is {gap:.2f} points below static: "
            f"{'MET' if gap <= 1.0 else 'MISSED'}."
        )
    else:
        lines.append("- Accuracy target: no DMNN run reached a FLOPs ratio <= 0.6: MISSED.")
    ratios = [epoch_time(r) / r["steps_per_epoch"] / static_step for n, r in results.items() if n != "static"]
    lines.append(
        f"- Step-time target (<= 1.25x static): DMNN steps take {min(ratios):.2f}x-{max(ratios):.2f}x: "
        f"{'MET' if max(ratios) <= 1.25 else 'MISSED'}."
    )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    results = {}
    for name, overrides in run_specs(args):
        results[name] = run_one(name, overrides, args)
        with open(os.path.join(args.output_root, "results.json"), "w") as f:
            json.dump(results, f, indent=1, default=float)
    static = results["static"]
    body = (
        f"Small ResNet (`resnet` / `dmnn_resnet`: stack (1,1,1,1), width 0.25, groups 4 for DMNN), "
        f"preset `cpu` (SGD 0.9, lr 0.2 x batch/256 cosine with 0.5-epoch warmup, batch 128, coupled "
        f"L2 5e-4), {args.epochs} epochs on the first {args.max_train_examples} CIFAR-10 training "
        f"images, seed {args.seed}, evaluated on {static['eval_examples']} test images. "
        f"Few epochs (CPU budget): absolute accuracies are far below converged CIFAR-10 numbers. "
        f"Times are wall times on a machine shared with other developers' jobs, so ratios "
        f"between runs are indicative only. DMNN uses masked execution in training (every "
        f"sub-block is computed and multiplied by its gate), so its training step cannot be "
        f"cheaper than the static one's.\n\n"
        + table(results) + "\n\n" + verdict(results)
    )
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()
