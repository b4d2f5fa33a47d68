"""Batched Keras/TF inference throughput: execution="gather" vs "masked" at batch 64.

    python -m benchmarks.gather_throughput [--iters 20] [--large_iters 3]

Two gate regimes, about half of the sub-blocks on: "uniform pattern" (every
image runs the first half of the sub-blocks: the controllers' gate logits are
fixed to +-1), and "per-image gates" (zero gate biases and scaled random gate
kernels, so each image picks its own sub-blocks; the rate is measured). Random
weights (throughput does not depend on them); CIFAR-10 test images.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

import dmnn_keras as dk  # noqa: E402
from benchmarks.report import write_section  # noqa: E402
from dmnn_keras.export import set_execution  # noqa: E402
from dmnn_keras.keras_compat import layer_calls  # noqa: E402


def uniform_half(model):
    for c in model.controllers:
        c.logits_dense.kernel.assign(np.zeros(c.logits_dense.kernel.shape, "float32"))
        half = c.groups // 2
        c.logits_dense.bias.assign(np.array([1.0] * half + [-1.0] * (c.groups - half), "float32"))
    return model


def per_image(model, images):
    """Random gate kernels; each gate's bias is minus its median logit on `images` (half on)."""
    import keras

    rng = np.random.RandomState(0)
    for controller in model.controllers:  # in network order: later hidden states see earlier gates
        dense = controller.logits_dense
        dense.kernel.assign(rng.normal(0, 1, dense.kernel.shape).astype("float32"))
        dense.bias.assign(np.zeros(controller.groups, "float32"))
        probe = keras.Model(model.input, list(layer_calls(controller)[0][0]))
        inputs = probe(images, training=False)
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        hidden = controller.hidden_state(inputs[0], inputs[1] if len(inputs) > 1 else None)
        logits = keras.ops.convert_to_numpy(dense(hidden))
        dense.bias.assign(-np.median(logits, axis=0).astype("float32"))
    return model


def timed(fn, x, iters):
    fn(x)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn(x).numpy()
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--large_iters", type=int, default=3,
                        help="calls per round for the 224x224 models (several seconds each)")
    parser.add_argument("--only", default=None, help="run only the configurations whose name contains this (nothing is written)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    cifar = next(iter(dk.data.load_dataset("cifar10", "test", batch_size=args.batch,
                                           training=False)))[0]
    large = tf.image.resize(cifar, (224, 224))
    configs = [
        ("CIFAR DMNN-ResNet, width 0.25 (default)", lambda: dk.DMNNResNet(seed=0), cifar),
        ("CIFAR DMNN-ResNet, width 1.0", lambda: dk.DMNNResNet(seed=0, width_multiplier=1.0), cifar),
        ("CIFAR DMNN-MobileNetV2",
         lambda: dk.DMNNMobileNetV2(input_shape=(32, 32, 3), num_classes=10, seed=0), cifar),
        ("DMNN-ResNet-50 (224)", lambda: dk.DMNNResNet50(seed=0), large),
        ("DMNN-MobileNetV2 (224)", lambda: dk.DMNNMobileNetV2(seed=0), large),
    ]
    rows = []
    for name, build, images in configs:
        if args.only and args.only not in name:
            continue
        iters = args.large_iters if images is large else args.iters
        for regime in ("uniform pattern", "per-image gates"):
            model = build()
            if regime == "uniform pattern":
                uniform_half(model)
            else:
                per_image(model, images)
            gates = dk.predict_gates(model, images.numpy())
            rate = float(np.mean([g.mean() for g in gates.values()]))
            flops_ratio = dk.profile(model, images.numpy())["flops_ratio"]
            fns = {}
            for execution in ("masked", "gather"):
                set_execution(model, execution)
                fns[execution] = tf.function(lambda x, m=model: m(x, training=False))
                fns[execution](images)  # trace
            outs = {e: f(images).numpy() for e, f in fns.items()}
            diff = float(np.abs(outs["masked"] - outs["gather"]).max() / np.abs(outs["masked"]).max())
            times = {"masked": [], "gather": []}
            for _ in range(3):  # interleave to share the load drift
                for execution in ("masked", "gather"):
                    times[execution] += timed(fns[execution], images, iters)
            med = {e: statistics.median(t) for e, t in times.items()}
            rows.append((name, regime, rate, flops_ratio, args.batch / med["masked"],
                         args.batch / med["gather"], med["masked"] / med["gather"], diff, iters))
            print(rows[-1], flush=True)
    load_after = os.getloadavg()
    body = [
        f"Batch {args.batch} of CIFAR-10 test images (resized to 224x224 for the 224 models), "
        "`model(x, training=False)` in a `tf.function` (TF CPU, 2 cores), median over 3 x N "
        f"interleaved calls (N = {args.iters}, {args.large_iters} for the 224 models). Random weights. "
        "`uniform pattern`: every image runs the first half of each block's sub-blocks; "
        "`per-image gates`: random gate kernels, each image picks its own sub-blocks. "
        "`gather` picks per block and call between sorting the samples by gate pattern "
        "(large activations) and gathering per sub-block (weights larger than the activations).",
        f"Load average {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end.",
        "",
        "| model | gates | execution rate | FLOPs ratio | masked img/s | gather img/s | speedup | max abs diff / max abs logit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, regime, rate, fr, tm, tg, sp, diff, _ in rows:
        body.append(f"| {name} | {regime} | {rate:.2f} | {fr:.2f} | {tm:.1f} | {tg:.1f} | {sp:.2f}x | {diff:.1e} |")
    print("\n".join(body))
    if args.only:
        print("(--only: BENCHMARKS.md not written)")
    else:
        write_section("gather_throughput", "\n".join(body))


if __name__ == "__main__":
    main()
