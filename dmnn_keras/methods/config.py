"""`GatingConfig`: a model's gating method and its controller and loss options, one object.

The model constructors (`DynamicResNet`, `DynamicMobileNetV2`) take it as
`gating_config=` and each of its fields as a keyword argument of the same
name; the defaults and the checks live here only.
"""

import dataclasses
import inspect
import numbers
from typing import Optional

import keras
import numpy as np

from dmnn_keras.layers.resource_loss import RATE_LOSSES
from dmnn_keras.methods.base import get_method


def _number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _boolean(value):
    return isinstance(value, (bool, np.bool_))


# field -> (test of a valid value, what is allowed); `gating` is checked by `get_method`.
_ALLOWED = {
    "flops_target": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "resource_loss_weight": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "dual_step": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "rate_loss": (lambda v: v in RATE_LOSSES, f"one of {RATE_LOSSES}"),
    "uncertainty_spread": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "num_categories": (lambda v: _integer(v) and v >= 0, "an int >= 0"),
    "category_loss_weight": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "use_previous_state": (_boolean, "True or False"),
    "controller_units": (lambda v: _integer(v) and v >= 1, "an int >= 1"),
    "temperature": (lambda v: _number(v) and v > 0, "a number > 0"),
    "forced_gate_rate": (lambda v: v is None or (_number(v) and 0 <= v <= 1),
                         "None or a number in [0, 1]"),
    "seed": (lambda v: v is None or _integer(v), "None or an int"),
    "dependent": (_boolean, "True or False"),
    "stochastic_inference": (_boolean, "True or False"),
    "one_sided": (_boolean, "True or False"),
    "difficulty_head": (lambda v: v is None or (isinstance(v, str) and bool(v)),
                        "None or the name of a block, e.g. 'conv3_block1'"),
    "difficulty_loss_weight": (lambda v: _number(v) and v >= 0, "a number >= 0"),
}


@keras.saving.register_keras_serializable(package="dmnn_keras")
@dataclasses.dataclass(frozen=True)
class GatingConfig:
    """How a model gates its blocks: the method and its controller and loss options.

    Every field is also a keyword argument of `DynamicResNet` and
    `DynamicMobileNetV2` (and of the builders, through their `**kwargs`); a
    keyword given together with `gating_config=` replaces that field.
    Invalid values raise ValueError naming the field.

    Args:
        gating: None (static), "dmnn" (multi-path blocks), "aig" (ConvNet-AIG:
            a gate per whole block), "channel" (channel gating of a
            bottleneck's two inner convolutions, batch activation loss) or
            "lcnet" (LC-Net: layer and channel-group skip + scale); "aig",
            "channel" and "lcnet" need `groups=1`. Each is a `GatingMethod`
            of `dmnn_keras.methods`, where more can be registered.
        flops_target: target FLOPs ratio / execution rate in (0, 1].
        resource_loss_weight: lambda of the resource loss, >= 0.
        dual_step: step of the resource loss's Lagrange multiplier per
            training step (see `ResourceLoss`); 0 = the paper's penalty only.
        rate_loss: "block", "gate" or "bounded": the resource loss's execution
            rates per block (paper), per sub-block, or per block with every
            sub-block's rate kept in [0.1, 0.9] (see `ResourceLoss`; DMNN only).
        uncertainty_spread: >= 0; > 0 adds per-image FLOPs targets raised by
            the uncertainty of the image's own prediction, so that hard images
            get more sub-blocks and easy ones fewer (see `ResourceLoss`; DMNN
            and LC-Net, with the logits as output: `include_top=True`,
            `classifier_activation=None`; or a `difficulty_head`, read in
            their place). 0: the batch mean only.
        num_categories: 0, or the number of coarse categories predicted by
            every controller (category supervision; DMNN only).
        category_loss_weight: weight of stage 0's category losses; each later
            stage multiplies it by 10.
        use_previous_state: DMNN controllers take the previous controller's
            state.
        controller_units: hidden units of each controller or gate network
            (the ConvNet-AIG, channel-gating and LC-Net builders pass 16).
        temperature: Gumbel-softmax temperature, > 0.
        forced_gate_rate: None, or run a fixed share `rate` of the sub-blocks
            for every image: in each block the first k, k = round(rate * groups)
            with the rounding error carried from block to block (DMNN and
            ConvNet-AIG; see `dmnn_keras.force_gates`).
        seed: None or int, seed of the gate noise.
        dependent: "aig"/"channel": True for input-dependent gates, False for
            one learned logit pair per gate shared by all inputs (pruning
            mode; see `dmnn_keras.prune`).
        stochastic_inference: "aig"/"channel"/"lcnet": keep the Gumbel noise
            in inference (the original ConvNet-AIG); default deterministic.
        one_sided: "channel": penalise only a batch activation above target.
        difficulty_head: None, or the block after which a classifier head
            (an early exit's: average pool to 2x2, Dense; always run) gives
            the DMNN controllers of every later gated block a difficulty
            signal: its softmax uncertainty is an input of their gate logits
            (`GateController(difficulty_input=True)`) and, with
            `uncertainty_spread > 0`, the uncertainty that raises the
            per-image FLOPs targets (in place of the final logits'). DMNN
            only. It classifies into the model's `num_classes`; without the
            top (`include_top=False`) it is kept for the controllers but is
            not an output, so no labels train it (load it, e.g. `weights=`
            a preset trained with it).
        difficulty_loss_weight: weight of the difficulty head's
            cross-entropy on the labels (added in `fit`), >= 0.

    Returns:
        A frozen dataclass; `get_config()` gives its fields as a dict and
        `GatingConfig.from_config` (or `keras.saving`) restores it.

    Example:
    ```python
    import dmnn_keras as dk
    config = dk.GatingConfig(flops_target=0.3, seed=0)
    model = dk.DMNNResNet(gating_config=config)
    model.gating_config == config, model.get_config()["flops_target"]  # (True, 0.3)
    dk.DMNNResNet(gating_config=config, seed=1).gating_config.seed  # 1
    ```
    """

    gating: Optional[str] = "dmnn"
    flops_target: float = 0.5
    resource_loss_weight: float = 2.0
    dual_step: float = 0.01
    rate_loss: str = "block"
    uncertainty_spread: float = 0.0
    num_categories: int = 0
    category_loss_weight: float = 1e-4
    use_previous_state: bool = True
    controller_units: int = 32
    temperature: float = 1.0
    forced_gate_rate: Optional[float] = None
    seed: Optional[int] = None
    dependent: bool = True
    stochastic_inference: bool = False
    one_sided: bool = False
    difficulty_head: Optional[str] = None
    difficulty_loss_weight: float = 1.0

    def __post_init__(self):
        get_method(self.gating)
        for name, (valid, allowed) in _ALLOWED.items():
            value = getattr(self, name)
            if not valid(value):
                raise ValueError(f"{name} must be {allowed}. Received: {name}={value!r}")

    def get_config(self):
        """`{field: value}`: the model's `get_config` holds these entries."""
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_keywords(cls, gating_config, kwargs):
        """The config of a constructor call and the keywords that are not its fields.

        Args:
            gating_config: None (the defaults), a `GatingConfig`, or a dict of
                fields (its `get_config()`, or `keras.saving.serialize_keras_object`'s form).
            kwargs: the constructor's other keyword arguments; those named
                like a field replace it.

        Returns:
            `(config, rest)`: a `GatingConfig` and `kwargs` without its fields.
        """
        names = cls.field_names()
        fields = {key: value for key, value in kwargs.items() if key in names}
        rest = {key: value for key, value in kwargs.items() if key not in names}
        return dataclasses.replace(cls.coerce(gating_config), **fields), rest

    @classmethod
    def coerce(cls, gating_config):
        """`gating_config` (None, a `GatingConfig` or a dict of fields) as a `GatingConfig`."""
        if gating_config is None:
            return cls()
        if isinstance(gating_config, cls):
            return gating_config
        if isinstance(gating_config, dict):
            if "class_name" in gating_config:
                config = keras.saving.deserialize_keras_object(gating_config)
                if not isinstance(config, cls):
                    raise ValueError(
                        f"gating_config must deserialize to a {cls.__name__}. Received: a "
                        f"serialized {type(config).__name__} ({gating_config.get('class_name')!r})"
                    )
                return config
            unknown = sorted(set(gating_config) - set(cls.field_names()))
            if unknown:
                raise ValueError(
                    f"gating_config has no field {unknown[0]!r}. Allowed: "
                    f"{', '.join(cls.field_names())}. Received: gating_config={gating_config!r}"
                )
            return cls(**gating_config)
        raise ValueError(
            "gating_config must be None, a dmnn_keras.GatingConfig or a dict of its fields. "
            f"Received: gating_config of type {type(gating_config).__name__}"
        )

    @classmethod
    def field_names(cls):
        """The fields, in order: the keyword arguments a model constructor takes for them."""
        return tuple(field.name for field in dataclasses.fields(cls))


def with_gating_keywords(init):
    """Shows `GatingConfig`'s fields as keyword-only arguments of the constructor `init`.

    `init(self, ..., gating_config=None, dtype=None, **kwargs)` takes the
    fields through `**kwargs` (`GatingConfig.from_keywords`); its signature
    (`help`, `inspect.signature`, the typo hints of `check_keyword_arguments`)
    then lists each one with its default, written once in `GatingConfig`.
    """
    signature = inspect.signature(init)
    parameters = list(signature.parameters.values())
    fields = [inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default)
              for field in dataclasses.fields(GatingConfig)]
    init.__signature__ = signature.replace(parameters=parameters[:-1] + fields + parameters[-1:])
    return init
