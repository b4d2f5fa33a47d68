"""Writes the Colab notebooks of colab/ (without outputs).

    python scripts/make_notebooks.py

The notebooks are generated so that their shared cells (badge, install,
parameters) stay identical; edit this script, not the .ipynb files, and run
it again. `tests/notebooks/test_notebooks.py` executes them.
"""

import os
import textwrap

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
COLAB_URL = "https://colab.research.google.com/github/dmnn-keras/dmnn_keras/blob/main/colab/{name}.ipynb"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
INSTALL = 'dmnn_keras[export] @ git+https://github.com/dmnn-keras/dmnn_keras'
SMALL_VAR = "DMNN_NOTEBOOK_SMALL"


def md(text):
    return new_markdown_cell(textwrap.dedent(text).strip("\n"))


def code(text):
    return new_code_cell(textwrap.dedent(text).strip("\n"))


def header(name, title, intro, runtime):
    badge = f"[![Open In Colab]({BADGE})]({COLAB_URL.format(name=name)})"
    intro = textwrap.dedent(intro).strip()
    return [
        md(f"{badge}\n\n# {title}\n\n{intro}\n\n**Runtime:** {runtime}"),
        code(f"""
        # Installs dmnn_keras from its repository when it is not importable yet (on Colab).
        # If Colab asks to restart the runtime after the install, restart it and run all cells again.
        try:
            import dmnn_keras
        except ImportError:
            %pip install -q "{INSTALL}"
            import dmnn_keras
        print("dmnn_keras", dmnn_keras.__version__)
        """),
    ]


def small_switch(text):
    head = textwrap.dedent(f"""
    # Parameters. {SMALL_VAR}=1 shrinks data and training to a smoke run of about a minute
    # on 2 CPU cores (the test suite runs every notebook that way); the defaults are the real run.
    import os

    SMALL = os.environ.get("{SMALL_VAR}", "0") == "1"
    """).strip("\n")
    body = textwrap.dedent(text).strip("\n")
    return code(head + "\n" + body + '\nprint("SMALL =", SMALL)')


TRAIN_HELPERS = '''
import time

import keras
import numpy as np
import tensorflow as tf
from IPython.display import Image, Markdown, display

import dmnn_keras as dk

keras.utils.set_random_seed(SEED)


def num_batches(dataset):
    count = int(dataset.cardinality())
    return count if count >= 0 else sum(1 for _ in dataset)


def train_model(model, train, epochs, learning_rate=None):
    """SGD + Nesterov momentum, half an epoch of warm-up then cosine decay to 0 from
    `learning_rate` (default LEARNING_RATE); returns seconds."""
    steps = epochs * num_batches(train)
    warmup = max(1, num_batches(train) // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, steps - warmup), warmup_target=learning_rate or LEARNING_RATE,
        warmup_steps=warmup)
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        run_eagerly=RUN_EAGERLY,
    )
    start = time.perf_counter()
    model.fit(train, epochs=epochs, verbose=2)
    return time.perf_counter() - start


def markdown_table(rows):
    """rows: list of dicts with the same keys -> a Markdown table."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    return Markdown("\\n".join(lines))
'''


def quickstart():
    name = "quickstart"
    cells = header(
        name,
        "dmnn_keras quickstart: dynamic multi-path ResNets in Keras 3",
        """
        A **dynamic-inference** network decides, image by image, which parts of itself to run.
        In a DMNN (dynamic multi-path neural network) every residual block is split into
        sub-blocks (paths), and a tiny *gate controller* in front of each block looks at the
        block's input and switches each sub-block on or off; a resource loss during training
        pushes the average cost toward a target fraction of the full network's FLOPs.

        This notebook builds DMNN-ResNet-50, trains a small DMNN ResNet on CIFAR-10 with
        `model.fit`, profiles how many multiply-accumulates (MACs) it really executes per image,
        shows which sub-blocks run for which classes, compares it with its static twin
        trained the same way, loads the trained networks shipped as presets, and fine-tunes
        one of them on other classes.
        """,
        "a GPU runtime (Runtime → Change runtime type → T4 GPU) trains both CIFAR-10 models in "
        "a few minutes; a CPU runtime works too, slower.",
    )
    cells.append(small_switch("""
    SEED = 0
    BATCH_SIZE = 32 if SMALL else 128
    TRAIN_EXAMPLES = 64 if SMALL else None   # None: all 50,000 CIFAR-10 training images
    EVAL_EXAMPLES = 200 if SMALL else None   # None: all 10,000 test images
    EPOCHS = 1 if SMALL else 10
    LEARNING_RATE = 0.1
    # For a handful of steps, tracing the training graph costs more than running eagerly.
    RUN_EAGERLY = SMALL
    # A trained preset: a shipped preset's name or a directory written by dk.save_to_preset.
    PRESET = "dmnn_resnet_cifar10"
    EXITS_PRESET = "exits_resnet_cifar10"  # the early-exit network, fine-tuned at the end
    FINE_TUNE_EPOCHS = 1 if SMALL else 2
    FINE_TUNE_LEARNING_RATE = 0.02
    """))
    cells.append(code(TRAIN_HELPERS))
    cells += [
        md("""
        ## DMNN-ResNet-50

        `DMNNResNet50(groups=4, flops_target=0.5)` is ResNet-50 (v1.5, 224×224, 1000 classes)
        whose 16 bottlenecks are each split into 4 sub-blocks of the same total parameter
        count, with one gate controller per block. `dk.profile` counts parameters and MACs
        without running anything; with `flops_target=0.5` training drives the executed MACs
        toward half of the full count.
        """),
        code("""
        big = dk.DMNNResNet50(groups=4, flops_target=0.5)
        big_profile = dk.profile(big)
        print(f"parameters:            {big_profile['params']:,}")
        print(f"  of which controllers: {big_profile['controller_params']:,}")
        print(f"MACs, every sub-block on: {big_profile['flops'] / 1e9:.2f} G per 224x224 image")
        print(f"MACs that never skip:     {big_profile['always_on_flops'] / 1e9:.2f} G")
        print("gated blocks:", [block.name for _, block in big.gated_blocks])
        del big
        """),
        md("""
        ## A small DMNN ResNet on CIFAR-10

        `dk.DMNNResNet()` defaults to a CPU-sized CIFAR model: one bottleneck per stage,
        width ×0.25, 4 sub-blocks per block, FLOPs target 0.5. Models take raw pixels in
        [0, 255] and output logits. `dk.data.load_dataset` reads CIFAR-10 with TensorFlow
        Datasets (downloaded on first use) and augments the training split (pad-4 crop, flip).
        """),
        code("""
        train = dk.data.load_dataset("cifar10", "train", batch_size=BATCH_SIZE, training=True,
                                     max_examples=TRAIN_EXAMPLES, seed=SEED)
        test = dk.data.load_dataset("cifar10", "test", batch_size=256, training=False,
                                    max_examples=EVAL_EXAMPLES)
        test_labels = np.concatenate([labels for _, labels in test.as_numpy_iterator()])
        print(num_batches(train), "training batches per epoch,", len(test_labels), "test images")
        """),
        md("""
        The fit log shows, next to the loss and accuracy, the `flops_ratio` (executed / full
        MACs) and `execution_rate` (fraction of sub-blocks on) of the training batches: the
        gates start all on and the resource loss moves them toward the target.
        """),
        code("""
        dmnn = dk.DMNNResNet(flops_target=0.5, seed=SEED)
        dmnn_seconds = train_model(dmnn, train, EPOCHS)
        """),
        md("""
        ## Profile: executed MACs per image

        In inference the gates are hard 0/1 decisions, so every image runs its own set of
        sub-blocks. `dk.profile(model, images)` returns the executed MACs of every image and
        the execution rate of every block; `dk.predict_gates` returns the gates themselves.
        """),
        code("""
        dmnn_stats = dk.profile(dmnn, test)
        dmnn_gates, dmnn_logits = dk.predict_gates(dmnn, test, return_logits=True)
        dmnn_accuracy = float(np.mean(np.argmax(dmnn_logits, axis=-1) == test_labels))
        print(f"test accuracy: {dmnn_accuracy:.3f}")
        print(f"MACs: full {dmnn_stats['flops'] / 1e6:.2f} M, executed on average "
              f"{dmnn_stats['executed_flops_mean'] / 1e6:.2f} M (ratio {dmnn_stats['flops_ratio']:.2f})")
        for block, rates in dmnn_stats["path_rates"].items():
            print(f"  {block}: sub-block execution rates {np.round(rates, 2).tolist()}")
        """),
        md("""
        The library's figures (`dmnn_keras.training.figures`, the ones the training recipe
        writes next to its results): the histogram of executed MACs per test image (the DMNN
        paper's Fig. 5) and the execution rate of every sub-block per class (Fig. 7).
        """),
        code("""
        from dmnn_keras.training import figures

        figures.flops_histogram(dmnn_stats["executed_flops"], dmnn_stats["flops"], "flops_histogram.png",
                                title="DMNN ResNet on CIFAR-10: executed MACs per test image")
        display(Image("flops_histogram.png"))
        figures.execution_heatmap(dmnn_gates, test_labels, list(dk.data.CIFAR10_CLASS_NAMES),
                                  "execution_heatmap.png", title="Sub-block execution rate per class")
        display(Image("execution_heatmap.png"))
        """),
        md("""
        And the test images of a few classes that ran the fewest (left) and the most (right)
        MACs (Fig. 6).
        """),
        code("""
        figures.flops_extremes(test, dmnn_stats["executed_flops"], test_labels,
                               list(dk.data.CIFAR10_CLASS_NAMES), "flops_extremes.png")
        display(Image("flops_extremes.png"))
        """),
        md("""
        ## The static baseline

        `dk.ResNet()` is the same network with gating off (one path per block, no
        controllers), trained with the same data, schedule and epochs.
        """),
        code("""
        static = dk.ResNet(seed=SEED)
        static_seconds = train_model(static, train, EPOCHS)
        static_stats = dk.profile(static, test)
        static_logits = static.predict(test, verbose=0)
        static_accuracy = float(np.mean(np.argmax(static_logits, axis=-1) == test_labels))
        """),
        md("""
        ## A trained preset

        `dk.from_preset(name_or_path)` loads a trained model shipped with dmnn_keras (or a
        preset directory written by `dk.save_to_preset`), without its training state.
        `dmnn_resnet_cifar10` is a DMNN ResNet of the same size with 2 sub-blocks per block
        and a difficulty head, trained with its gates for 25 epochs (distilled from its own
        network with every gate on) by `benchmarks/cifar10_pareto.py`; its gates that no
        image switched are fixed. Its model card (the preset's `README.md`) gives the recipe
        and the figures measured on the 10,000 test images, beside its static twin (the
        preset `resnet_cifar10`). Set `PRESET` in the parameters cell to load another one.

        `exits_resnet_cifar10` is that static twin with two early exits (after stages 2 and 3),
        trained with them for 25 epochs: an image whose exit is confident enough stops there.
        It is the dynamic network of the library that keeps the twin's accuracy at 0.6× its
        MACs and runs about twice as fast in TFLite (its card has the figures).
        """),
        code("""
        def evaluate(model, data, labels):
            \"\"\"(profile with executed MACs per image, top-1 accuracy) of `model` on `data`.\"\"\"
            stats = dk.profile(model, data)
            logits = model.predict(data, verbose=0)
            return stats, float(np.mean(np.argmax(logits, axis=-1) == labels))


        trained = dk.from_preset(PRESET)
        exits = dk.from_preset(EXITS_PRESET)
        for name, model in [(PRESET, trained), (EXITS_PRESET, exits)]:
            print(f"{name} card figures:", dk.presets.load_metadata(name).get("metrics"))
        trained_stats, trained_accuracy = evaluate(trained, test, test_labels)
        exits_stats, exits_accuracy = evaluate(exits, test, test_labels)
        """),
        code("""
        results = {}
        for label, stats, accuracy, seconds in [
            ("DMNN ResNet (flops_target=0.5)", dmnn_stats, dmnn_accuracy, dmnn_seconds),
            ("static ResNet", static_stats, static_accuracy, static_seconds),
            (f"preset {PRESET}", trained_stats, trained_accuracy, None),
            (f"preset {EXITS_PRESET}", exits_stats, exits_accuracy, None),
        ]:
            results[label] = {
                "params": stats["params"],
                "MACs, all on (M)": round(stats["flops"] / 1e6, 2),
                "MACs executed, mean (M)": round(stats["executed_flops_mean"] / 1e6, 2),
                "executed / static": round(stats["executed_flops_mean"] / static_stats["flops"], 2),
                "test accuracy": round(accuracy, 4),
                "training time (s)": "preset" if seconds is None else round(seconds, 1),
            }
        display(markdown_table([{"model": k, **v} for k, v in results.items()]))
        """),
        md("""
        Trained from scratch like this, a DMNN runs about half of its MACs per image but stays
        far below its static twin: 10-12 points after 4 epochs on 10,000 images
        (`benchmarks/cifar10_tradeoff.py`, `BENCHMARKS.md`). Even warm-started from a trained
        twin and distilled from it for 10 epochs, at 0.5× the twin's MACs it measured 71.2%
        against the twin's 79.7% (`benchmarks/cifar10_pareto.py`, row `dmnn_t050_s0`).
        Trained 25 epochs with the library's recipe (distilled from its own all-on network, a
        difficulty head, a scheduled target), the `dmnn_resnet_cifar10` preset has 80.98% at
        0.6× the twin's MACs, 0.8 point below the twin trained as long (81.77%); the
        early-exit preset has 81.74% at the same MACs and runs the median image in 0.53× the
        twin's TFLite time (the presets' cards). With `DMNN_NOTEBOOK_SMALL=1` (a few training steps) the first two rows only show
        that everything runs: the gates are still almost all on and the accuracy is near
        chance; the presets' rows show trained networks.

        ## Fine-tuning a preset on your own classes

        `dk.from_preset(name, num_classes=n)` keeps every trained weight except the class
        heads' (the classifier, a DMNN's difficulty head, the exit heads), which start fresh
        for your `n` classes. Here the task is CIFAR-10's vehicles against animals; with
        photos of your own, `dk.data.load_dataset("folder:/content/photos", "train", ...)`
        reads one subfolder per class (`recipes/train.py --dataset=folder:...` does the
        whole run). After training, `dk.calibrate_flops` sets the exits' confidence threshold
        so that the mean MACs meet a share of the full network's (here 0.6), on clean
        training images.
        """),
        code("""
        VEHICLES = tf.constant([0, 1, 8, 9], tf.int64)  # airplane, automobile, ship, truck


        def vehicle_or_animal(images, labels):
            is_vehicle = tf.reduce_any(tf.cast(labels, tf.int64)[:, None] == VEHICLES, axis=-1)
            return images, tf.cast(is_vehicle, tf.int32)


        two_train = train.map(vehicle_or_animal)
        two_test = test.map(vehicle_or_animal)
        two_labels = np.isin(test_labels, VEHICLES.numpy()).astype("int32")
        clean_train = dk.data.load_dataset("cifar10", "train", batch_size=256, training=False,
                                           max_examples=TRAIN_EXAMPLES)
        tuned = dk.from_preset(EXITS_PRESET, num_classes=2)
        tuned_seconds = train_model(tuned, two_train, FINE_TUNE_EPOCHS, FINE_TUNE_LEARNING_RATE)
        calibration = dk.calibrate_flops(tuned, clean_train, target=0.6, batches=4)
        tuned_stats, tuned_accuracy = evaluate(tuned, two_test, two_labels)
        results["exits preset fine-tuned: vehicles vs animals"] = {
            "MACs executed, mean (M)": round(tuned_stats["executed_flops_mean"] / 1e6, 2),
            "executed / full": round(tuned_stats["flops_ratio"], 2),
            "test accuracy": round(tuned_accuracy, 4),
            "training time (s)": round(tuned_seconds, 1),
        }
        print(results["exits preset fine-tuned: vehicles vs animals"])
        """),
        md("""
        Next: `category_supervision.ipynb` (the controllers' ablation on CIFAR-100) and
        `tflite_android.ipynb` (export to TFLite, where skipped sub-blocks and the layers after
        an exit really cost nothing).
        """),
    ]
    return name, cells, {"accelerator": "GPU"}


def category_supervision():
    name = "category_supervision"
    cells = header(
        name,
        "Category supervision and previous state of the gate controllers (CIFAR-100)",
        """
        The DMNN gate controller of a block sees the block's input and, optionally,
        1. the hidden state of the previous block's controller (`use_previous_state=True`), and
        2. during training, a small head that must predict the image's coarse *category* from the
           controller's hidden state (`num_categories=...`): category supervision. It pushes the
           controllers to pick sub-blocks by what the image shows; the head is dropped at inference.

        The DMNN paper's setting on CIFAR-100 uses its 20 superclasses as categories. This notebook
        trains the four combinations (the paper's ablation, small) and compares accuracy,
        executed MACs and how much the gates differ between superclasses.
        """,
        "a GPU runtime trains the four CIFAR-100 models in a few minutes each; a CPU runtime works, slower.",
    )
    cells.append(small_switch("""
    SEED = 0
    BATCH_SIZE = 32 if SMALL else 128
    TRAIN_EXAMPLES = 64 if SMALL else None   # None: all 50,000 CIFAR-100 training images
    EVAL_EXAMPLES = 100 if SMALL else None   # None: all 10,000 test images
    EPOCHS = 1 if SMALL else 8
    WIDTH = 0.25 if SMALL else 0.5           # width multiplier of the DMNN ResNet
    LEARNING_RATE = 0.1
    # For a handful of steps, tracing the training graph costs more than running eagerly.
    RUN_EAGERLY = SMALL
    """))
    cells.append(code(TRAIN_HELPERS))
    cells += [
        md("""
        ## CIFAR-100 with superclass labels

        `load_dataset("cifar100", ..., with_categories=True)` yields
        `(images, {"label": fine class, "category": superclass})`. Every `DynamicModel` accepts
        these labels: the classification loss uses `label`, the controllers' category heads
        (when the model has them) use `category`.
        """),
        code("""
        info = dk.data.get_dataset_info("cifar100")
        print(info.num_classes, "classes,", info.num_categories, "superclasses:", ", ".join(info.category_names[:5]), "...")
        train = dk.data.load_dataset("cifar100", "train", batch_size=BATCH_SIZE, training=True,
                                     max_examples=TRAIN_EXAMPLES, seed=SEED, with_categories=True)
        test = dk.data.load_dataset("cifar100", "test", batch_size=256, training=False,
                                    max_examples=EVAL_EXAMPLES, with_categories=True)
        test_labels = np.concatenate([y["label"] for _, y in test.as_numpy_iterator()])
        test_categories = np.concatenate([y["category"] for _, y in test.as_numpy_iterator()])
        print(num_batches(train), "training batches per epoch,", len(test_labels), "test images")
        """),
        md("""
        ## The ablation

        Same network, data, schedule and seed; only the two controller options change.
        *Gate specialisation* is the standard deviation, across the 20 superclasses, of each
        sub-block's execution rate on the test set, averaged over sub-blocks: 0 when every
        superclass runs the same sub-blocks as often.
        """),
        code("""
        VARIANTS = [
            ("previous state + category supervision (DMNN)", True, True),
            ("previous state only", True, False),
            ("category supervision only", False, True),
            ("neither", False, False),
        ]


        def gate_specialisation(gates, categories, num_categories):
            rates = []
            for block_gates in gates.values():
                per_category = np.stack([block_gates[categories == c].mean(axis=0)
                                         for c in range(num_categories) if np.any(categories == c)])
                rates.append(per_category.std(axis=0))
            return float(np.mean(np.concatenate(rates)))


        results, gates_of = {}, {}
        for label, previous_state, categories in VARIANTS:
            print(f"=== {label}")
            keras.utils.set_random_seed(SEED)
            model = dk.DMNNResNet(num_classes=info.num_classes, width_multiplier=WIDTH,
                                  use_previous_state=previous_state,
                                  num_categories=info.num_categories if categories else 0,
                                  seed=SEED)
            seconds = train_model(model, train, EPOCHS)
            stats = dk.profile(model, test)
            gates, logits = dk.predict_gates(model, test, return_logits=True)
            gates_of[label] = gates
            results[label] = {
                "previous state": previous_state,
                "category supervision": categories,
                "test accuracy": round(float(np.mean(np.argmax(logits, -1) == test_labels)), 4),
                "executed MACs ratio": round(stats["flops_ratio"], 3),
                "gate specialisation": round(gate_specialisation(gates, test_categories, info.num_categories), 4),
                "controller params": stats["controller_params"],
                "training time (s)": round(seconds, 1),
            }
        display(markdown_table([{"variant": k, **v} for k, v in results.items()]))
        """),
        md("""
        Execution rate of every sub-block per superclass for the full DMNN controller
        (previous state + category supervision): columns that differ are superclasses
        that take different paths through the network.
        """),
        code("""
        from dmnn_keras.training import figures

        figures.execution_heatmap(gates_of[VARIANTS[0][0]], test_categories, list(info.category_names),
                                  "category_heatmap.png",
                                  title="Sub-block execution rate per CIFAR-100 superclass")
        display(Image("category_heatmap.png"))
        """),
        md("""
        **Reading the table.** One short run per variant: differences of a point or two in
        accuracy are within run-to-run noise at this size (the paper trains DMNN-ResNet-50 for
        200 epochs). The state input costs controller parameters (`state_dense`); the category
        heads are training-only and not counted. With `DMNN_NOTEBOOK_SMALL=1` the run is a
        smoke test only (and the test suite feeds it fabricated CIFAR-100 examples from
        `tfds.testing.mock_data`, since CIFAR-100 cannot be downloaded there).
        """),
    ]
    return name, cells, {"accelerator": "GPU"}


KOTLIN = '''
## Running the `.tflite` on Android (LiteRT `Interpreter` + XNNPACK)

Copy `dmnn_dynamic_float32.tflite` (or the int8 file) into `app/src/main/assets/`. The model has
one signature, `serving_default`, with the input and outputs printed above:
input `images` float32 `[1, 32, 32, 3]` (raw RGB pixels in [0, 255]: no normalisation in the
app, the model normalises) and outputs `logits` float32 `[1, 10]`, `executed_flops` float32 `[1]`
(MACs this image ran) and `gates` float32 `[1, 16]` (the sub-blocks that ran, blocks in network
order). This cell is not executed.

```kotlin
// app/build.gradle.kts:  implementation("com.google.ai.edge.litert:litert:1.4.1")
// (the Interpreter API; LiteRT 2.x also has it, next to the newer CompiledModel API)
// and keep the model uncompressed:  android { androidResources { noCompress += "tflite" } }
import android.content.Context
import android.graphics.Bitmap
import org.tensorflow.lite.Interpreter
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

class DmnnClassifier(context: Context, assetName: String = "dmnn_dynamic_float32.tflite") {
    private val interpreter: Interpreter

    init {
        val fd = context.assets.openFd(assetName)
        val model: MappedByteBuffer = FileInputStream(fd.fileDescriptor).channel
            .map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
        val options = Interpreter.Options()
            .setNumThreads(1)
            .setUseXNNPACK(true)  // XNNPACK runs the convolutions of the sub-blocks that execute
        interpreter = Interpreter(model, options)
    }

    /** [bitmap] must already be 32x32. */
    fun classify(bitmap: Bitmap): Triple<FloatArray, Float, FloatArray> {
        val images = ByteBuffer.allocateDirect(4 * 32 * 32 * 3).order(ByteOrder.nativeOrder())
        val pixels = IntArray(32 * 32)
        bitmap.getPixels(pixels, 0, 32, 0, 0, 32, 32)
        for (p in pixels) {  // raw RGB in [0, 255]
            images.putFloat(((p shr 16) and 0xFF).toFloat())
            images.putFloat(((p shr 8) and 0xFF).toFloat())
            images.putFloat((p and 0xFF).toFloat())
        }
        images.rewind()
        val logits = Array(1) { FloatArray(10) }
        val executedFlops = FloatArray(1)
        val gates = Array(1) { FloatArray(16) }
        interpreter.runSignature(
            mapOf("images" to images),
            mapOf("logits" to logits, "executed_flops" to executedFlops, "gates" to gates),
            "serving_default",
        )
        return Triple(logits[0], executedFlops[0], gates[0])
    }

    fun close() = interpreter.close()
}
```
'''


def tflite_android():
    name = "tflite_android"
    cells = header(
        name,
        "Deploying a DMNN: dynamic TFLite, parity, latency and Android",
        """
        In Keras (and on a GPU) a DMNN computes every sub-block and multiplies the skipped
        ones by zero: the savings are only counted. `dmnn_keras.export.to_tflite` writes a
        batch-1 TFLite model in which every sub-block sits inside a `tf.cond` on its gate
        (TFLite `IF` ops, weights as constants with BatchNorm folded), so that a skipped
        sub-block really costs nothing and the executed ones run on XNNPACK.

        This notebook trains a small DMNN briefly, exports it (float32 and full-integer int8),
        checks that the TFLite model agrees with Keras on real CIFAR-10 test images, measures
        its latency against the static models with LiteRT (`ai_edge_litert`, XNNPACK), and ends
        with the Kotlin code that runs it on Android.
        """,
        "any; LiteRT runs on the CPU, which is what this notebook measures. Training takes about "
        "5-10 minutes on 2 CPU cores, less on a GPU runtime.",
    )
    cells.append(small_switch("""
    SEED = 0
    BATCH_SIZE = 32 if SMALL else 128
    TRAIN_EXAMPLES = 64 if SMALL else 10000
    EPOCHS = 1 if SMALL else 3
    WIDTH = 0.25 if SMALL else 0.5             # width multiplier of the DMNN ResNet
    LEARNING_RATE = 0.1
    PARITY_IMAGES = 50 if SMALL else 500      # real CIFAR-10 test images
    CALIBRATION_IMAGES = 32 if SMALL else 300  # for int8
    LATENCY_RUNS = 30 if SMALL else 300       # timed single-image runs per model
    NUM_THREADS = 1                           # LiteRT threads (phones: 1-4)
    # For a handful of steps, tracing the training graph costs more than running eagerly.
    RUN_EAGERLY = SMALL
    """))
    cells.append(code(TRAIN_HELPERS))
    cells += [
        md("""
        ## A briefly trained DMNN ResNet

        Short training is enough to move the gates away from "all on" (the controllers start
        with every sub-block on); `quickstart.ipynb` trains properly.
        """),
        code("""
        train = dk.data.load_dataset("cifar10", "train", batch_size=BATCH_SIZE, training=True,
                                     max_examples=TRAIN_EXAMPLES, seed=SEED)
        dmnn = dk.DMNNResNet(width_multiplier=WIDTH, flops_target=0.5, seed=SEED)
        train_model(dmnn, train, EPOCHS)

        test = dk.data.load_dataset("cifar10", "test", batch_size=PARITY_IMAGES, training=False,
                                    max_examples=PARITY_IMAGES)
        images, labels = next(iter(test.as_numpy_iterator()))
        calibration = dk.data.load_dataset("cifar10", "train", batch_size=CALIBRATION_IMAGES,
                                           training=False, max_examples=CALIBRATION_IMAGES)
        stats = dk.profile(dmnn, images)
        print(f"Keras: executed MACs {stats['executed_flops_mean'] / 1e6:.2f} M of "
              f"{stats['flops'] / 1e6:.2f} M (ratio {stats['flops_ratio']:.2f}) on {len(images)} test images")
        """),
        md("""
        ## Export

        `to_tflite(model, path, mode=None, quantization=None, representative_dataset=None)`:
        `mode="dynamic"` (the default for gated models) keeps the gates; `mode="static"` runs
        every sub-block. Quantizations: `None` (float32), `"float16"`, `"dynamic_range"` and
        `"int8"` (int8 weights and activations, float32 input and outputs; needs calibration
        images). The static twin `dk.ResNet()` (no gates, one path per block) is exported too,
        as the latency reference: latency does not depend on the weights, so it is not trained.
        `dk.force_gates(dmnn, 0.5)` (the same weights, the first half of every block's
        sub-blocks on for every image) shows the latency at exactly half the sub-blocks.
        """),
        code("""
        from dmnn_keras.export import QUANTIZATIONS, tflite_runner, to_tflite

        print("quantizations:", QUANTIZATIONS)
        exports = {
            "DMNN dynamic float32": to_tflite(dmnn, "dmnn_dynamic_float32.tflite"),
            "DMNN dynamic int8": to_tflite(dmnn, "dmnn_dynamic_int8.tflite", quantization="int8",
                                           representative_dataset=calibration),
            "DMNN all sub-blocks on (mode='static')": to_tflite(dmnn, "dmnn_all_on_float32.tflite",
                                                                 mode="static"),
            "DMNN half the sub-blocks (force_gates 0.5)": to_tflite(dk.force_gates(dmnn, 0.5),
                                                                    "dmnn_half_float32.tflite"),
            "static ResNet twin float32": to_tflite(dk.ResNet(width_multiplier=WIDTH, seed=SEED),
                                                    "resnet_static_float32.tflite"),
            "static ResNet twin int8": to_tflite(dk.ResNet(width_multiplier=WIDTH, seed=SEED),
                                                 "resnet_static_int8.tflite",
                                                 quantization="int8", representative_dataset=calibration),
        }
        for label, info in exports.items():
            print(f"{label:44s} {info['path']:32s} {info['size_bytes'] / 1e6:6.2f} MB  mode={info['mode']}")
        print("gate layout (order of the `gates` output):", exports["DMNN dynamic float32"]["gate_layout"])
        """),
        md("""
        What an app sees: the signature of the exported file, read back with the LiteRT
        interpreter (these are the names the Kotlin code below uses).
        """),
        code("""
        signature_runner = tflite_runner("dmnn_dynamic_float32.tflite").interpreter.get_signature_runner("serving_default")
        signature = {
            "inputs": {k: (v["shape"].tolist(), v["dtype"].__name__) for k, v in signature_runner.get_input_details().items()},
            "outputs": {k: (v["shape"].tolist(), v["dtype"].__name__) for k, v in signature_runner.get_output_details().items()},
        }
        for kind, tensors in signature.items():
            for tensor_name, (shape, dtype) in tensors.items():
                print(f"{kind[:-1]:6s} {tensor_name:15s} {dtype:8s} {shape}")
        """),
        md("""
        ## Parity with Keras on real images

        The float32 export must give the same gates, the same executed MACs and the same logits
        (up to float rounding) as the Keras model. int8 changes the numbers slightly, so it is
        judged by how often its gates and top-1 class agree with Keras (its `executed_flops`
        output is computed in quantized arithmetic too, hence a small relative error).
        """),
        code("""
        keras_gates, keras_logits = dk.predict_gates(dmnn, images, return_logits=True)
        keras_gates = np.concatenate(list(keras_gates.values()), axis=-1)


        def run_all(path):
            run = tflite_runner(path, num_threads=NUM_THREADS)
            outputs = [run(image) for image in images]
            return {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}


        parity = {}
        for label in ["DMNN dynamic float32", "DMNN dynamic int8"]:
            out = run_all(exports[label]["path"])
            parity[label] = {
                "max abs. logit difference": float(np.abs(out["logits"] - keras_logits).max()),
                "gates equal to Keras": float(np.mean(out["gates"] == keras_gates)),
                "top-1 equal to Keras": float(np.mean(out["logits"].argmax(-1) == keras_logits.argmax(-1))),
                "executed MACs, max rel. error": float(np.max(np.abs(out["executed_flops"] / stats["executed_flops"] - 1))),
                "top-1 accuracy": float(np.mean(out["logits"].argmax(-1) == labels)),
            }
        display(markdown_table([{"model": k, **{n: f"{v:.4g}" for n, v in row.items()}} for k, row in parity.items()]))
        float_parity = parity["DMNN dynamic float32"]
        assert float_parity["gates equal to Keras"] == 1.0 and float_parity["max abs. logit difference"] < 1e-3, float_parity
        """),
        md("""
        ## Latency with LiteRT (XNNPACK)

        Each model classifies the same test images one at a time (batch 1, as on a phone)
        after a warm-up; the table gives the median time per image and the mean MACs each
        model executed. The dynamic model pays a small fixed cost (controllers, `IF` ops, more
        and narrower convolutions than its static twin), so it beats the static model only
        once its gates skip enough: with every sub-block on it is slower, at half the
        sub-blocks it is faster, and the larger the network the closer the speed-up follows
        the executed-MACs ratio. A briefly trained DMNN (the small run) still runs most
        sub-blocks. On a shared machine the timings are noisy.
        """),
        code("""
        def median_latency_ms(path, runs=LATENCY_RUNS):
            run = tflite_runner(path, num_threads=NUM_THREADS)
            for image in images[:5]:
                run(image)
            times = []
            for i in range(runs):
                image = images[i % len(images)]
                start = time.perf_counter()
                run(image)
                times.append(time.perf_counter() - start)
            return 1e3 * float(np.median(times))


        latency = {}
        for label, info in exports.items():
            executed = run_all(info["path"])["executed_flops"].mean()
            latency[label] = {"median ms / image": median_latency_ms(info["path"]),
                              "executed MACs (M)": executed / 1e6,
                              "size (MB)": info["size_bytes"] / 1e6}
        reference = latency["static ResNet twin float32"]["median ms / image"]
        for row in latency.values():
            row["speed-up vs static float32"] = reference / row["median ms / image"]
        display(markdown_table([{"model": k, **{n: f"{v:.3g}" for n, v in row.items()}} for k, row in latency.items()]))
        results = {"parity": parity, "latency": latency, "signature": signature}
        """),
        md(KOTLIN),
        md("""
        On Colab, download the file with `from google.colab import files;
        files.download("dmnn_dynamic_float32.tflite")`.
        """),
    ]
    return name, cells, {}


def build(name, cells, colab_metadata):
    notebook = new_notebook(cells=cells)
    notebook.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "colab": {"provenance": [], "name": f"{name}.ipynb"},
        **colab_metadata,
    }
    for i, cell in enumerate(notebook.cells):
        cell.id = f"{name.replace('_', '-')}-{i:02d}"  # stable ids: regenerating gives no diff
    nbformat.validate(notebook)
    return notebook


def main():
    out_dir = os.path.join(ROOT, "colab")
    os.makedirs(out_dir, exist_ok=True)
    for make in (quickstart, category_supervision, tflite_android):
        name, cells, colab_metadata = make()
        path = os.path.join(out_dir, f"{name}.ipynb")
        nbformat.write(build(name, cells, colab_metadata), path)
        print("wrote", os.path.relpath(path, ROOT))


if __name__ == "__main__":
    main()
