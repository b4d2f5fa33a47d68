"""The first `fit` step of a DMNN: Keras' own build before it against dmnn_keras', side by side.

    python -m benchmarks.first_step [--models dmnn_cifar,dmnn_resnet50] [--repeats 2]

Without a `tf.distribute` strategy Keras 3.15 builds a model's compiled metrics
and optimizer inside the first traced step, and `tf.function` traces a step
that created variables twice; `DynamicModel` builds them from the data's
shapes first (`dmnn_keras.keras_compat.build_before_first_step`). Each
measurement runs in a fresh process: build and compile the model, then time
`fit` over one batch of random images (one training step: the build, the
trace(s), the step) and count the traced train steps. The two builds
alternate, the first rotating per repeat. Results are kept in
`benchmarks/results/first_step.json` as each one finishes (a rerun measures
only what is missing; `--fresh` starts again) and the section of
BENCHMARKS.md is rewritten after each.
"""

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

SECTION = "First training step (first_step)"
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "first_step.json")
MODELS = {  # name: (builder arguments, batch size)
    "dmnn_cifar": (dict(builder="DMNNResNet", stack_sizes=(1, 1, 1, 1), width_multiplier=0.25,
                        input_shape=(32, 32, 3), num_classes=10, groups=4), 32),
    "dmnn_resnet50": (dict(builder="DMNNResNet50", groups=4), 2),
}
BUILDS = ("keras", "dmnn_keras")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--repeats", type=int, default=2, help="measurements per model and build")
    parser.add_argument("--fresh", action="store_true", help="drop the stored results first")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "BUILD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"--models: unknown {', '.join(unknown)}; allowed: {', '.join(MODELS)}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1. Received: {args.repeats}")
    return args


def measure_here(model_name, build):
    """`{"seconds", "traces"}` of one `fit` step of `model_name` in this process, with `build`."""
    import keras
    import numpy as np

    import dmnn_keras as dk
    from dmnn_keras.keras_compat import replace_symbolic_build

    arguments, batch = MODELS[model_name]
    arguments = dict(arguments)
    model = getattr(dk, arguments.pop("builder"))(**arguments)
    if build == "keras":  # Keras' own hook: builds only under a strategy
        replace_symbolic_build(model, functools.partial(keras.Model._maybe_symbolic_build, model))
    traces = []
    step = model.train_step
    model.train_step = lambda data: (traces.append(1), step(data))[1]
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    shape = tuple(model.input_shape[1:])
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch,) + shape).astype("float32")
    y = rng.integers(0, model.output_shape[-1], batch)
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    return {"seconds": time.perf_counter() - start, "traces": len(traces)}


def measure(model_name, build):
    """One measurement in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.first_step", "--child", model_name, build],
        capture_output=True, text=True, cwd=REPO,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    if result.returncode:
        raise RuntimeError(f"{model_name} with {build}'s build failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def section(results):
    lines = [
        "Seconds of `model.fit` over one batch of random images (one training step, the trace "
        "included), each in a fresh process, the builds alternating; `keras` = Keras 3.15's own "
        "build before `fit` (only under a strategy), `dmnn_keras` = `DynamicModel`'s "
        "(`keras_compat.build_before_first_step`). `traces` = train steps traced.",
        "",
        "| model | batch | keras: seconds (median) / traces | dmnn_keras: seconds (median) / traces "
        "| ratio | measurements |",
        "|---|---|---|---|---|---|",
    ]
    for name in MODELS:
        runs = {build: results.get(name, {}).get(build, []) for build in BUILDS}
        if not all(runs.values()):
            continue
        median = {build: statistics.median(r["seconds"] for r in runs[build]) for build in BUILDS}
        traces = {build: "/".join(sorted({str(r["traces"]) for r in runs[build]})) for build in BUILDS}
        seconds = {build: ", ".join(f"{r['seconds']:.1f}" for r in runs[build]) for build in BUILDS}
        lines.append(
            f"| {name} | {MODELS[name][1]} | {median['keras']:.1f} ({seconds['keras']}) / "
            f"{traces['keras']} | {median['dmnn_keras']:.1f} ({seconds['dmnn_keras']}) / "
            f"{traces['dmnn_keras']} | {median['dmnn_keras'] / median['keras']:.2f} "
            f"| {len(runs['keras'])} + {len(runs['dmnn_keras'])} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure_here(*args.child)))
        return
    from benchmarks.report import save_json, write_section

    results = {}
    if os.path.exists(RESULTS) and not args.fresh:
        with open(RESULTS) as f:
            results = json.load(f)
    for repeat in range(args.repeats):
        for name in args.models:
            order = BUILDS if repeat % 2 == 0 else BUILDS[::-1]
            for build in order:
                runs = results.setdefault(name, {}).setdefault(build, [])
                if len(runs) > repeat:
                    continue
                runs.append(measure(name, build))
                print(name, build, runs[-1], flush=True)
                save_json(RESULTS, results)
                write_section(SECTION, section(results), command=(
                    "python -m benchmarks.first_step --models "
                    f"{','.join(args.models)} --repeats {args.repeats}"))


if __name__ == "__main__":
    main()
