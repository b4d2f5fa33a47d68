"""The gate of channel gating (Herrmann, Bowen & Zabih, "An end-to-end approach
for speeding up neural network inference"), conditional or pruning."""

import keras

from dmnn_keras.layers.aig_controller import AIGController


@keras.saving.register_keras_serializable(package="dmnn_keras")
class ChannelGate(AIGController):
    """Hard 0/1 gates on groups of filters of a `ChannelGatedBlock`.

    One switch, two modes:

      * `dependent=True` (conditional computation): a gate network per block,
        GAP -> Dense(16) -> BN -> ReLU -> Dense(2 per gate), looking at the
        block input; each image gets its own channel groups.
      * `dependent=False` (pruning): one learned (off, on) logit pair per gate,
        shared by all inputs. In training each image still draws its own
        Gumbel noise (a stochastic mask around the shared logits, which keeps
        the straight-through gradient informative); in inference the gates
        are `1[on > off]` for every image, so `dmnn_keras.prune` can remove
        the off filters for good.

    Gates of a block are laid out segment after segment
    (`segments=(gates of conv 1, gates of conv 2)`), matching
    `ChannelGatedBlock.gate_groups`. Everything else is `AIGController`
    (hard straight-through Gumbel, biases start ~85% open).

    Args:
        groups: int >= 1, number of gates of the block (all segments).
        dependent: True: conditional (gate network); False: pruning.
        **kwargs: other `AIGController` arguments (`hidden_units`,
            `segments`, `initial_open`, `forced_rate`, ...).

    Call args:
        inputs: the block input `[batch, H, W, C]`.

    Returns:
        `(gates, gates)`, `[batch, groups]` each.

    Example:
    ```python
    import numpy as np
    from dmnn_keras import ChannelGate
    x = np.random.rand(2, 8, 8, 64).astype("float32")
    gates, _ = ChannelGate(groups=12, segments=(8, 4))(x)
    gates.shape  # (2, 12)
    forced, _ = ChannelGate(groups=12, segments=(8, 4), dependent=False, forced_rate=0.5)(x)
    np.asarray(forced)[0]  # [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0]
    ```
    """

    def __init__(self, groups, dependent=True, **kwargs):
        super().__init__(groups=groups, dependent=dependent, **kwargs)
