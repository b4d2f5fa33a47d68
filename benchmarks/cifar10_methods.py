"""CIFAR-10: static vs ConvNet-AIG vs channel gating (pruned, conditional) vs LC-Net vs DMNN.

    python -m benchmarks.cifar10_methods [--epochs 3] [--train_examples 10000]
        [--eval_examples 2000] [--ratios 0.5,0.7] [--batch_size 64] [--latency_runs 100]

Same small backbone for every method (ResNet v1.5, one bottleneck per stage,
width 0.25, CIFAR stem: `dk.ResNet()` defaults; DMNN with 4 sub-blocks), same
data, epochs and optimizer (SGD momentum 0.9, cosine learning rate from 0.05,
resource loss weight 2). FLOPs targets are matched on the *whole network*:
each method's own target is set so that hitting it gives the requested ratio
R of the static backbone's MACs:

  * DMNN, LC-Net: `ResourceLoss` already targets the whole network's FLOPs
    ratio: target R.
  * AIG (per-layer execution rate) and channel gating (batch activation B,
    a fraction of the *gateable* MACs): target
    `(R * full - always_on) / (full - always_on)`, from the model's own
    FLOPs table.

"MACs ratio" is executed MACs per test image (controllers included) over
the static backbone's MACs, measured with `dmnn_keras.profile` on the test
images. Pruned channel gating is the pruning-mode model after
`dmnn_keras.prune` (a plain static model). TFLite latency (batch 1,
ai-edge-litert/XNNPACK, 1 thread, median) is measured when
`dmnn_keras.export` can convert the model.
"""

import argparse
import math
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

import dmnn_keras as dk  # noqa: E402
from benchmarks.report import write_section  # noqa: E402
from dmnn_keras.data import load_dataset  # noqa: E402
from dmnn_keras.flops import gateable_fraction, model_flops_table  # noqa: E402
from dmnn_keras.models.aig import AIGResNet  # noqa: E402
from dmnn_keras.models.channel_gated import ChannelGatedResNet  # noqa: E402
from dmnn_keras.models.lcnet import LCNetResNet  # noqa: E402
from dmnn_keras.pruning import prune  # noqa: E402

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def gateable_target(builder, ratio, static_flops, **kwargs):
    """The method's own target so that the whole network runs `ratio` of the static MACs."""
    table = model_flops_table(builder(flops_target=0.5, **kwargs))
    target = gateable_fraction(table, ratio * static_flops)
    return float(min(1.0, max(0.05, target)))


def methods(ratio, static_flops):
    """[(row name, builder(seed) -> model, prune after training?)] for one FLOPs ratio."""
    t_aig = gateable_target(AIGResNet, ratio, static_flops)
    t_cond = gateable_target(ChannelGatedResNet, ratio, static_flops, dependent=True)
    t_prune = gateable_target(ChannelGatedResNet, ratio, static_flops, dependent=False)
    return [
        (f"ConvNet-AIG (rate target {t_aig:.2f})",
         lambda seed: AIGResNet(flops_target=t_aig, seed=seed), False),
        (f"Channel gating, conditional (B target {t_cond:.2f})",
         lambda seed: ChannelGatedResNet(flops_target=t_cond, dependent=True, seed=seed), False),
        (f"Channel gating, pruned (B target {t_prune:.2f})",
         lambda seed: ChannelGatedResNet(flops_target=t_prune, dependent=False, seed=seed), True),
        (f"LC-Net (target {ratio:.2f})",
         lambda seed: LCNetResNet(flops_target=ratio, seed=seed), False),
        (f"DMNN, 4 sub-blocks (target {ratio:.2f})",
         lambda seed: dk.DMNNResNet(flops_target=ratio, seed=seed), False),
    ]


def train(model, train_data, epochs, steps_per_epoch):
    schedule = keras.optimizers.schedules.CosineDecay(0.05, epochs * steps_per_epoch)
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9), loss=LOSS,
                  metrics=["accuracy"])
    model.fit(train_data, epochs=epochs, verbose=2)
    return model


def evaluate(model, images, labels):
    logits = model.predict(images, batch_size=256, verbose=0)
    return float((logits.argmax(-1) == labels).mean())


def tflite_latency(model, images, runs, mode=None):
    """Median batch-1 latency in ms, or a string saying why it could not be measured."""
    try:
        try:
            import dmnn_keras.export.method_converters  # noqa: F401  (AIG/channel/LC-Net)
        except ImportError:
            pass
        from dmnn_keras.export import tflite_runner, to_tflite

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.tflite")
            to_tflite(model, path, mode=mode)
            run = tflite_runner(path, num_threads=1)
            for image in images[:5]:
                run(image)
            times = []
            for i in range(runs):
                start = time.perf_counter()
                run(images[i % len(images)])
                times.append(time.perf_counter() - start)
            return 1e3 * statistics.median(times)
    except Exception as error:  # report, do not lose the training results
        return f"n/a ({type(error).__name__}: {str(error)[:80]})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train_examples", type=int, default=10000)
    parser.add_argument("--eval_examples", type=int, default=2000)
    parser.add_argument("--ratios", default="0.5,0.7")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--latency_runs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dry_run", action="store_true", help="print the table, do not write it")
    args = parser.parse_args()
    ratios = [float(r) for r in args.ratios.split(",")]

    train_data = load_dataset("cifar10", "train", batch_size=args.batch_size, training=True,
                              max_examples=args.train_examples, seed=args.seed)
    test = load_dataset("cifar10", "test", batch_size=500, training=False,
                        max_examples=args.eval_examples)
    images = np.concatenate([x for x, _ in test.as_numpy_iterator()])
    labels = np.concatenate([y for _, y in test.as_numpy_iterator()])
    steps = math.ceil(args.train_examples / args.batch_size)

    keras.utils.set_random_seed(args.seed)
    static = train(dk.ResNet(), train_data, args.epochs, steps)
    static_flops = dk.profile(static)["flops"]
    static_latency = tflite_latency(static, images, args.latency_runs)
    rows = [("Static ResNet", "-", evaluate(static, images, labels), 1.0, static_latency)]
    print(rows[-1], flush=True)

    for ratio in ratios:
        for name, builder, do_prune in methods(ratio, static_flops):
            keras.utils.set_random_seed(args.seed)
            model = train(builder(args.seed), train_data, args.epochs, steps)
            if do_prune:
                model = prune(model)
                executed = dk.profile(model)["flops"]
            else:
                executed = dk.profile(model, images)["executed_flops_mean"]
            latency = tflite_latency(model, images, args.latency_runs)
            rows.append((name, f"{ratio:.1f}", evaluate(model, images, labels),
                         executed / static_flops, latency))
            print(rows[-1], flush=True)

    def fmt_latency(value):
        return value if isinstance(value, str) else f"{value:.3f}"

    def latency_ratio(value):
        if isinstance(value, str) or isinstance(static_latency, str):
            return "n/a"
        return f"{value / static_latency:.2f}"

    lines = [
        f"{args.epochs} epochs on the first {args.train_examples} CIFAR-10 training images, "
        f"top-1 on the first {args.eval_examples} test images (a short, cheap run on a shared "
        "2-core machine: compare methods with each other, not with published accuracies; "
        "latencies were measured while other developers used the machine).",
        "",
        "| Method | Requested MACs ratio | Top-1 | MACs ratio (vs static) | TFLite ms | Latency ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, ratio, top1, flops_ratio, latency in rows:
        lines.append(f"| {name} | {ratio} | {100 * top1:.1f}% | {flops_ratio:.3f} | "
                     f"{fmt_latency(latency)} | {latency_ratio(latency)} |")
    lines += ["", f"Static backbone: {static_flops:,} MACs per 32x32 image. See the module "
              "docstring of benchmarks/cifar10_methods.py for how targets are matched."]
    if args.dry_run:
        print("\n".join(lines))
    else:
        write_section("CIFAR-10: AIG, channel gating, LC-Net, DMNN at matched FLOPs",
                      "\n".join(lines))


if __name__ == "__main__":
    main()
