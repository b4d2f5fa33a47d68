"""Gate logits of trained models: how far from 0 each controller's logits sit, and the multiplier.

    python -m benchmarks.gate_logits MODEL.keras [MODEL.keras ...] [--images N]

For each model: per gated block, the mean and standard deviation over N
CIFAR-10 test images of every gate's logit, the smallest |logit|, and the
resource loss's Lagrange multiplier and target. A logit far beyond +-5 has a
straight-through gradient below sigmoid'(5) = 0.0066: such a gate no longer
trains (see `GumbelGate`'s `logit_bound`). Prints; writes nothing.
"""

import argparse

import numpy as np


def gate_logits(model, images):
    """`{block name: logits [N, groups]}` of every controller of `model` on `images`."""
    import keras

    from dmnn_keras.layers import GateController

    controllers = [c for c, _ in model.gated_blocks if isinstance(c, GateController)]
    # Each controller's hidden state and, with a difficulty input, the difficulty head's logits.
    inputs = [[c.output[1]] + ([c.input[-1]] if c.difficulty_input else []) for c in controllers]
    probe = keras.Model(model.input, [t for pair in inputs for t in pair])
    outputs = probe.predict(images, batch_size=256, verbose=0)
    outputs = iter(outputs if isinstance(outputs, list) else [outputs])
    return {c.name: np.asarray(c.logits_from_hidden(*[next(outputs) for _ in pair]))
            for c, pair in zip(controllers, inputs)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help=".keras files of gated dmnn_keras models")
    parser.add_argument("--images", type=int, default=256, help="CIFAR-10 test images")
    args = parser.parse_args(argv)
    import dmnn_keras as dk
    from dmnn_keras.training.model_files import load_keras_model

    images = dk.data.load_dataset("cifar10", "test", batch_size=args.images, training=False,
                                  max_examples=args.images)
    images = next(iter(images))[0].numpy()
    for path in args.models:
        model = load_keras_model(path)
        print(path)
        for name, logits in gate_logits(model, images).items():
            mean = ", ".join(f"{v:.1f}" for v in logits.mean(0))
            std = ", ".join(f"{v:.2f}" for v in logits.std(0))
            print(f"  {name}: mean [{mean}] std [{std}] min |logit| {np.abs(logits).min():.2f}")
        loss = model.resource_loss
        print(f"  multiplier {float(loss.multiplier):.2f}, target {float(loss.target):.4f}")


if __name__ == "__main__":
    main()
