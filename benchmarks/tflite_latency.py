"""Batch-1 TFLite latency (ai-edge-litert, XNNPACK): static vs dynamic DMNN, and int8 accuracy.

    python -m benchmarks.tflite_latency [--models cifar,mobilenetv2,resnet50] [--runs 15] [--rounds 10]
        [--train_seconds 240] [--trained_model PATH.keras]

For each backbone: the static twin (original network), and per `groups`
configuration (uniform 4, and per-stage groups with whole-block gates in the
high-resolution stages) the DMNN in static mode and with 1.0/0.75/0.5/0.25 of
its sub-blocks on. Gate patterns are produced at run time by the controllers
(their gate logits set to +-1), so the dynamic model executes its `IF` ops
exactly as with learned gates; `force_gates` itself would be folded away by the
converter. Weights of the 224x224 models are random (latency does not depend on
them). The CIFAR model is trained for a few minutes here (or loaded with
--trained_model) for the learned-gates rows and int8 accuracy.
"""

import argparse
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
from dmnn_keras.export import to_tflite  # noqa: E402
from dmnn_keras.models import carried_active  # noqa: E402

RATES = (1.0, 0.75, 0.5, 0.25)
# Per-stage groups: whole-block gates where feature maps are large (narrow
# sub-blocks there are slow per MAC in XNNPACK), 4 (2) sub-blocks deeper.
RESNET_STAGE_GROUPS = (1, 1, 4, 4)
# Two wider sub-blocks in the low-resolution stages: less split overhead.
RESNET_STAGE_GROUPS_2 = (1, 1, 2, 2)
MOBILENET_STAGE_GROUPS = (1, 1, 1, 1, 2, 2, 2)


def pattern_model(model, rate):
    """A copy whose controllers switch on a fixed share `rate` of sub-blocks for every image, at run time.

    The same sub-blocks as `dk.force_gates(model, rate)` (k per block with the
    rounding error carried, `dk.models.carried_active`), but decided by the
    controllers at run time: force_gates' constant gates would be folded away by
    the converter.
    """
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    carry = 0.0
    for controller in copy.controllers:
        g = controller.groups
        active, carry = carried_active(rate, g, controller.min_active, carry)
        controller.logits_dense.kernel.assign(np.zeros(controller.logits_dense.kernel.shape, "float32"))
        controller.logits_dense.bias.assign(np.array([1.0] * active + [-1.0] * (g - active), "float32"))
    return copy


def interpreter(path, threads):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=path, num_threads=threads)
    return it.get_signature_runner("serving_default")


def latency_ms(path, images, threads, runs, rounds=3):
    """Median over `rounds` x `runs` single-image runs (after warm-up), in ms."""
    return interleaved_latency_ms([path], images, threads, runs, rounds)[0]


def interleaved_latency_ms(paths, images, threads, runs, rounds=3):
    """Median latency (ms) of each model; rounds of `runs` runs alternate between the models.

    Alternating the models round by round spreads slow periods of a shared machine
    over all of them, so their ratios are steadier than those of back-to-back runs.
    """
    runners = [interpreter(p, threads) for p in paths]
    for run in runners:
        for image in images[:5]:
            run(images=image[None])
    times = [[] for _ in paths]
    for _ in range(rounds):
        for run, t in zip(runners, times):
            for i in range(runs):
                image = images[i % len(images)][None]
                start = time.perf_counter()
                run(images=image)
                t.append(time.perf_counter() - start)
    return [1e3 * statistics.median(t) for t in times]


def per_image_latency(path, images, threads, repeats=5):
    """Median latency of each image (repeats per image), in ms, and the executed FLOPs."""
    run = interpreter(path, threads)
    for image in images[:5]:
        run(images=image[None])
    lat, flops = [], []
    for image in images:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = run(images=image[None])
            times.append(time.perf_counter() - start)
        lat.append(1e3 * statistics.median(times))
        flops.append(float(out["executed_flops"][0]))
    return np.array(lat), np.array(flops)


def train_cifar(seconds, path):
    """A CPU-sized DMNN-ResNet trained for about `seconds` on CIFAR-10 (model.fit)."""
    model = dk.DMNNResNet(seed=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    train = dk.data.load_dataset("cifar10", "train", batch_size=128, training=True, seed=0)

    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if time.time() - start > seconds:
                self.model.stop_training = True

    start = time.time()
    model.fit(train, epochs=100, steps_per_epoch=100, callbacks=[Stop()], verbose=2)
    model.save(path)
    return model


def tflite_accuracy(path, dataset):
    run = interpreter(path, 1)
    correct = total = 0
    flops = []
    for images, labels in dataset.as_numpy_iterator():
        for image, label in zip(images, labels):
            out = run(images=image[None])
            correct += int(out["logits"][0].argmax() == label)
            flops.append(float(out["executed_flops"][0]))
            total += 1
    return correct / total, float(np.mean(flops))


def bench_backbone(name, configs, static_twin, images, args, tmp, rows):
    """Static twin, then per `(label, model)` config: static mode and the dynamic gate patterns."""
    twin_flops = dk.profile(static_twin)["flops"]
    files = [("static twin", "groups=1, no gates", to_tflite(
        static_twin, f"{tmp}/{name}_twin.tflite")["path"], twin_flops)]
    for c, (config, model) in enumerate(configs):
        files.append((config, "static mode (all sub-blocks, no IF)", to_tflite(
            model, f"{tmp}/{name}_{c}_static.tflite", mode="static")["path"],
            dk.profile(model)["flops"]))
        for rate in RATES:
            copy = pattern_model(model, rate)
            flops = dk.profile(copy, images[:1])["executed_flops_mean"]
            files.append((config, f"dynamic, {rate:.2f} of sub-blocks on", to_tflite(
                copy, f"{tmp}/{name}_{c}_dyn{rate}.tflite")["path"], flops))
            del copy
    for threads in (1, 2):
        times = interleaved_latency_ms([f[2] for f in files], images, threads, args.runs, args.rounds)
        base = times[0]
        static_mode = {}
        for (config, label, path, flops), ms in zip(files, times):
            if label.startswith("static mode"):
                static_mode[config] = ms
            vs_static_mode = ms / static_mode[config] if config in static_mode else float("nan")
            rows.append((name, threads, config, label, ms, ms / base, vs_static_mode,
                         flops / twin_flops, os.path.getsize(path) / 1e6))
            print(rows[-1], flush=True)


def target_summary(rows):
    """Per model, config and thread count: all-on latency ratio and the latency at FLOPs 0.5.

    The latency at a FLOPs ratio of 0.5 is interpolated linearly between the two
    dynamic rows whose FLOPs ratios bracket 0.5.
    """
    lines = []
    keys = sorted({(r[0], r[2], r[1]) for r in rows if r[3].startswith("dynamic")},
                  key=lambda k: (k[0], k[1], k[2]))
    for name, config, threads in keys:
        dyn = sorted((r[7], r[5]) for r in rows
                     if (r[0], r[2], r[1]) == (name, config, threads) and r[3].startswith("dynamic"))
        all_on = [r[5] for r in rows if (r[0], r[2], r[1]) == (name, config, threads)
                  and r[3] == "dynamic, 1.00 of sub-blocks on"][0]
        at_half = None
        for (f0, l0), (f1, l1) in zip(dyn, dyn[1:]):
            if f0 <= 0.5 <= f1:
                at_half = l0 + (0.5 - f0) / (f1 - f0) * (l1 - l0)
        half = "n/a (FLOPs 0.5 not bracketed)" if at_half is None else (
            f"{at_half:.3f}x ({'met' if at_half <= 0.60 else 'MISSED'})")
        lines.append(f"| {name} | {config} | {threads} | {all_on:.3f}x "
                     f"({'met' if all_on <= 1.05 else 'MISSED'}) | {half} |")
    return lines


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="cifar,mobilenetv2,resnet50")
    parser.add_argument("--runs", type=int, default=15, help="runs per model and round")
    parser.add_argument("--rounds", type=int, default=10,
                        help="rounds alternating between the models (many short rounds spread the drift of a shared machine over all of them)")
    parser.add_argument("--train_seconds", type=float, default=240)
    parser.add_argument("--trained_model", default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()
    tmp = tempfile.mkdtemp()
    rng = np.random.RandomState(0)
    rows, notes = [], []
    models = args.models.split(",")
    cifar_test = dk.data.load_dataset("cifar10", "test", batch_size=100, training=False)
    cifar_images = next(iter(cifar_test))[0].numpy()
    if "cifar" in models:
        bench_backbone("CIFAR DMNN-ResNet (32x32)", [
            ("groups=4", dk.DMNNResNet(seed=0)),
            (f"groups={RESNET_STAGE_GROUPS}", dk.DMNNResNet(groups=RESNET_STAGE_GROUPS, seed=0)),
        ], dk.ResNet(), cifar_images, args, tmp, rows)
    if "mobilenetv2" in models:
        images = rng.uniform(0, 255, (10, 224, 224, 3)).astype("float32")
        bench_backbone("DMNN-MobileNetV2 (224)", [
            ("groups=4", dk.DMNNMobileNetV2(seed=0)),
            (f"groups={MOBILENET_STAGE_GROUPS}", dk.DMNNMobileNetV2(groups=MOBILENET_STAGE_GROUPS, seed=0)),
        ], dk.MobileNetV2(), images, args, tmp, rows)
    if "resnet50" in models:
        images = rng.uniform(0, 255, (10, 224, 224, 3)).astype("float32")
        bench_backbone("DMNN-ResNet-50 (224)", [
            ("groups=4", dk.DMNNResNet50(seed=0)),
            (f"groups={RESNET_STAGE_GROUPS}", dk.DMNNResNet50(groups=RESNET_STAGE_GROUPS, seed=0)),
            (f"groups={RESNET_STAGE_GROUPS_2}", dk.DMNNResNet50(groups=RESNET_STAGE_GROUPS_2, seed=0)),
        ], dk.ResNet50(), images, args, tmp, rows)

    # Learned gates and int8 on a trained CIFAR model.
    trained_rows, int8_rows = [], []
    if "cifar" in models:
        path = args.trained_model
        if path and os.path.exists(path):
            model = keras.models.load_model(path)
            notes.append(f"Trained CIFAR model loaded from `{path}`.")
        else:
            path = path or os.path.join(tmp, "cifar_dmnn.keras")
            model = train_cifar(args.train_seconds, path)
            notes.append(f"Trained CIFAR model: DMNNResNet() trained here for ~{args.train_seconds:.0f} s "
                         "(Adam 2e-3, batch 128, model.fit on CIFAR-10 train with augmentation).")
        twin = to_tflite(dk.ResNet(), f"{tmp}/twin.tflite")["path"]
        f32 = to_tflite(model, f"{tmp}/trained_f32.tflite")
        full = dk.profile(model)["flops"]
        twin_flops = dk.profile(dk.ResNet())["flops"]
        for threads in (1, 2):
            base = latency_ms(twin, cifar_images, threads, args.runs, args.rounds)
            lat, flops = per_image_latency(f32["path"], cifar_images, threads)
            trained_rows.append((threads, base, float(np.median(lat)), float(np.mean(lat)),
                                 float(np.mean(flops)) / twin_flops, float(np.mean(flops)) / full))
        calib = dk.data.load_dataset("cifar10", "train", batch_size=100, training=False,
                                     max_examples=300)
        variants = {"float32": f32["path"]}
        for q in ("dynamic_range", "int8"):
            variants[q] = to_tflite(model, f"{tmp}/trained_{q}.tflite", quantization=q,
                                    representative_dataset=calib)["path"]
        variants["int8 static mode"] = to_tflite(model, f"{tmp}/trained_int8_static.tflite",
                                                 mode="static", quantization="int8",
                                                 representative_dataset=calib)["path"]
        variants["float32 static mode"] = to_tflite(model, f"{tmp}/trained_f32_static.tflite",
                                                    mode="static")["path"]
        keras_acc = model.evaluate(cifar_test, verbose=0, return_dict=True)["accuracy"]
        for label, p in variants.items():
            acc, mean_flops = tflite_accuracy(p, cifar_test)
            int8_rows.append((label, acc, latency_ms(p, cifar_images, 1, args.runs, args.rounds),
                              os.path.getsize(p) / 1e6, mean_flops / full))
            print(int8_rows[-1], flush=True)

    load_after = os.getloadavg()
    body = [
        "Batch 1, ai-edge-litert Interpreter (XNNPACK, the default delegate), median over "
        f"{args.rounds} x {args.runs} runs after 5 warm-up runs; the rounds alternate between all files of a "
        "backbone, so slow periods of the machine hit them alike. `vs twin`: latency and FLOPs "
        "relative to the static twin (the same builder with groups=1 and no gates, i.e. the "
        "original ResNet / MobileNetV2). `vs static mode`: latency relative to the same DMNN "
        "exported without any IF (every sub-block runs), i.e. what the conditional execution "
        "itself costs or saves. Dynamic rows: the controllers switch on a fixed share of "
        "sub-blocks at run time (gate logits set to +-1; first k sub-blocks of each block, "
        "k = round(rate x G) with the rounding error carried to the next block, as `force_gates`), so the `IF` ops "
        "run as with learned gates. 224x224 models have random weights (latency does not "
        "depend on them). Per-stage `groups` keep whole-block gates (1 sub-block) in the "
        "high-resolution stages.",
        f"Load average {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end.",
        "",
        "| model | threads | groups | variant | latency ms | latency vs twin | latency vs static mode "
        "| FLOPs vs twin | size MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, threads, config, label, ms, ratio, vs_static, fratio, size in rows:
        body.append(f"| {name} | {threads} | {config} | {label} | {ms:.2f} | {ratio:.2f} | "
                    f"{'-' if vs_static != vs_static else f'{vs_static:.2f}'} | {fratio:.2f} | {size:.2f} |")
    body += ["", "Targets of issue 4 against the static twin: all sub-blocks on <= 1.05x its latency; "
             "<= 0.60x at a FLOPs ratio of 0.5 (interpolated between the rows that bracket it):", "",
             "| model | groups | threads | all on | at FLOPs 0.5 |", "|---|---|---|---|---|"]
    body += target_summary(rows)
    if trained_rows:
        body += ["", "Learned gates on 100 CIFAR-10 test images (trained CPU-sized DMNN-ResNet, float32):", "",
                 "| threads | static twin ms | dynamic median ms | dynamic mean ms | latency ratio (median) "
                 "| FLOPs ratio vs twin | FLOPs ratio vs all sub-blocks |",
                 "|---|---|---|---|---|---|---|"]
        for threads, base, med, mean, fr_twin, fr_full in trained_rows:
            body.append(f"| {threads} | {base:.3f} | {med:.3f} | {mean:.3f} | {med / base:.2f} | "
                        f"{fr_twin:.2f} | {fr_full:.2f} |")
    if int8_rows:
        body += ["", "Quantization of the trained CIFAR model: accuracy on the 10,000 CIFAR-10 test images "
                 f"(Keras float32: {keras_acc:.4f}), latency (1 thread) and size:", "",
                 "| variant | accuracy | latency ms | size MB | FLOPs ratio |", "|---|---|---|---|---|"]
        for label, acc, ms, size, fr in int8_rows:
            body.append(f"| {label} | {acc:.4f} | {ms:.3f} | {size:.3f} | {fr:.2f} |")
    body += [""] + notes
    write_section("tflite_latency", "\n".join(body))
    print("\n".join(body))


if __name__ == "__main__":
    main()
