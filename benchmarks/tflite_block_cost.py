"""Where a dynamic DMNN's TFLite time goes: one ResNet-50 bottleneck at each stage's size.

    python benchmarks/tflite_block_cost.py [--runs 15] [--rounds 20]

For a stride-1 bottleneck of each ResNet-50 stage (56x56x256, 28x28x512,
14x14x1024, 7x7x2048) it times, with XNNPACK at batch 1 and 1 thread:

- the original block (1x1, 3x3, 1x1 + identity, ReLU);
- the same block split into `groups` parameter-preserving sub-blocks
  (`bottleneck_path_width`) and summed, as a plain graph (DMNN static mode);
- the split block with one `tf.cond` per sub-block (running sum passed
  through, weights created inside the branches), as `export.to_tflite` builds
  it, with all, half and none of the sub-blocks on;
- the gate controller's global average pool as TFLite MEAN and as
  AVERAGE_POOL_2D (what the exporter uses), in microseconds.

Plain TF graphs with random weights (latency does not depend on them); the
rounds alternate between the models. Writes the `tflite_block_cost` section of
BENCHMARKS.md.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

from benchmarks.report import write_section  # noqa: E402
from dmnn_keras.export.block_converters import conditional_sum  # noqa: E402
from dmnn_keras.layers.multi_path_block import bottleneck_path_width  # noqa: E402

STAGES = ((56, 64), (28, 128), (14, 256), (7, 512))  # (spatial size, bottleneck width)


def _kernel(rng, *shape):
    return tf.constant((rng.standard_normal(shape) * (2.0 / np.prod(shape[:-1])) ** 0.5).astype("float32"))


def _conv(x, kernel, relu=True):
    y = tf.nn.conv2d(x, kernel, 1, "SAME")
    return tf.nn.relu(y) if relu else y


def block_functions(channels, width, groups, seed=0):
    """(original, split, dynamic, dynamic_relu_inside, pool_mean, pool_avg) TF functions of one bottleneck."""
    path_width = bottleneck_path_width(channels, width, channels, groups)
    rng = np.random.default_rng(seed)
    full = [rng.standard_normal(s).astype("float32") * 0.05
            for s in ((1, 1, channels, width), (3, 3, width, width), (1, 1, width, channels))]
    paths = [[rng.standard_normal(s).astype("float32") * 0.05
              for s in ((1, 1, channels, path_width), (3, 3, path_width, path_width),
                        (1, 1, path_width, channels))] for _ in range(groups)]

    def path(x, weights):  # constants created where they are used (inside a branch)
        k1, k2, k3 = (tf.constant(w) for w in weights)
        return _conv(_conv(_conv(x, k1), k2), k3, relu=False)

    def original(x):
        return tf.nn.relu(x + path(x, full))

    def split(x):
        total = x
        for weights in paths:
            total = total + path(x, weights)
        return tf.nn.relu(total)

    path_fns = [(lambda w: lambda t: path(t, w))(weights) for weights in paths]

    def dynamic(x, gates):  # the exporter's chain of IFs, ReLU after the last one
        return tf.nn.relu(conditional_sum(x, x, tf.reshape(gates, [1, -1]), path_fns, None))

    def dynamic_relu_inside(x, gates):  # the block's ReLU fused into the last IF's ADD instead
        total = x
        for j, fn in enumerate(path_fns):
            finish = tf.nn.relu if j == len(path_fns) - 1 else tf.identity
            total = tf.cond(gates[j] > 0.5,
                            (lambda fn, acc, finish: lambda: finish(acc + fn(x)))(fn, total, finish),
                            (lambda acc, finish: lambda: finish(acc))(total, finish))
        return total

    dense = _kernel(rng, channels, 32)

    def pool_mean(x):
        return tf.nn.relu(tf.matmul(tf.reduce_mean(x, axis=[1, 2]), dense))

    def pool_avg(x):
        pooled = tf.nn.avg_pool2d(x, x.shape[1:3], 1, "VALID")
        return tf.nn.relu(tf.matmul(tf.reshape(pooled, [1, -1]), dense))

    return path_width, original, split, dynamic, dynamic_relu_inside, pool_mean, pool_avg


def convert(fn, size, channels, groups, path):
    specs = [tf.TensorSpec([1, size, size, channels], tf.float32)]
    if groups:
        specs.append(tf.TensorSpec([groups], tf.float32))
    concrete = tf.function(fn).get_concrete_function(*specs)
    with open(path, "wb") as f:
        f.write(tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert())
    return path


def interleaved_ms(models, runs, rounds=3):
    """models: list of (path, gates or None). Median ms of each, rounds alternating."""
    from ai_edge_litert.interpreter import Interpreter

    runners = []
    for path, gates in models:
        it = Interpreter(model_path=path, num_threads=1)
        it.allocate_tensors()
        inputs = it.get_input_details()
        it.set_tensor(inputs[0]["index"], np.random.default_rng(1).standard_normal(
            inputs[0]["shape"]).astype("float32"))
        if gates is not None:
            it.set_tensor(inputs[1]["index"], np.asarray(gates, "float32"))
        for _ in range(5):
            it.invoke()
        runners.append(it)
    times = [[] for _ in models]
    for _ in range(rounds):
        for it, t in zip(runners, times):
            for _ in range(runs):
                start = time.perf_counter()
                it.invoke()
                t.append(time.perf_counter() - start)
    return [1e3 * statistics.median(t) for t in times]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15, help="runs per model and round")
    parser.add_argument("--rounds", type=int, default=20, help="rounds alternating between the models")
    parser.add_argument("--groups", type=int, default=4)
    args = parser.parse_args()
    g = args.groups
    if g < 2:
        parser.error(f"--groups must be an int >= 2. Received: {g}")
    tmp = tempfile.mkdtemp()
    rows = []
    for size, width in STAGES:
        channels = 4 * width
        path_width, original, split, dynamic, relu_inside, pool_mean, pool_avg = block_functions(
            channels, width, g)
        name = f"{tmp}/{size}"
        models = [
            (convert(original, size, channels, 0, name + "_orig.tflite"), None),
            (convert(split, size, channels, 0, name + "_split.tflite"), None),
        ]
        dyn = convert(dynamic, size, channels, g, name + "_dyn.tflite")
        half = [1.0] * (g // 2) + [0.0] * (g - g // 2)
        models += [(dyn, [1.0] * g), (dyn, half), (dyn, [0.0] * g),
                   (convert(pool_mean, size, channels, 0, name + "_mean.tflite"), None),
                   (convert(pool_avg, size, channels, 0, name + "_avg.tflite"), None),
                   (convert(relu_inside, size, channels, g, name + "_relu_inside.tflite"), [1.0] * g)]
        ms = interleaved_ms(models, args.runs, args.rounds)
        base = ms[0]
        rows.append((f"{size}x{size}x{channels}", width, path_width, base, ms[1] / base, ms[2] / base,
                     ms[3] / base, ms[4] / base, 1e3 * ms[5], 1e3 * ms[6], ms[7] / base))
        print(rows[-1], flush=True)
    body = [
        f"One stride-1 ResNet-50 bottleneck per stage, batch 1, XNNPACK, 1 thread, median over "
        f"{args.rounds} x {args.runs} runs (rounds alternate between the models). `split`: the block as {g} "
        "parameter-preserving sub-blocks summed, no IF (DMNN static mode). `IF`: one tf.cond per "
        "sub-block as the exporter builds it (`conditional_sum`, then the ReLU); `ReLU inside the last "
        "IF`: the same with all on but the ReLU fused into the last IF's ADD (one op fewer; tried and "
        "not adopted: not consistently faster across runs). Ratios are relative to the original block. The "
        "pool columns: the gate controller's global average pool + Dense(32) as TFLite MEAN and as "
        "AVERAGE_POOL_2D (the exporter's choice), in microseconds.",
        "",
        f"| block input | width | sub-block width | original ms | split | IF, all {g} on | IF, {g // 2} on "
        f"| IF, none on | IF, all {g} on, ReLU inside the last IF | pool as MEAN us | pool as AVERAGE_POOL_2D us |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for shape, width, pw, base, sp, on, half, off, mean_us, avg_us, relu_inside in rows:
        body.append(f"| {shape} | {width} | {pw} | {base:.2f} | {sp:.2f}x | {on:.2f}x | {half:.2f}x | "
                    f"{off:.2f}x | {relu_inside:.2f}x | {mean_us:.0f} | {avg_us:.0f} |")
    body += ["", "Narrow sub-blocks cost most where feature maps are large (their full-width outputs are "
             "memory traffic), which is why per-stage `groups` such as `(1, 1, 4, 4)` keep whole-block "
             "gates in the first two ResNet stages (tflite_latency section). `IF, none on` is what the "
             "IF ops cost by themselves: LiteRT hands the branch inputs over without copying and lets "
             "a taken branch write into the IF's output, but an else branch that passes the running sum "
             "through copies it (one full-width memcpy per sub-block that is off)."]
    write_section("tflite_block_cost", "\n".join(body))
    print("\n".join(body))


if __name__ == "__main__":
    main()
