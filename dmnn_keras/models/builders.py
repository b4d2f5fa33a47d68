"""Public builders as data: `make_builder` makes a builder function from its name, arguments and
the arguments it fixes; `builder_doc` writes its docstring from the same data.

timm registers each model as a short builder over a config dict and keras-hub
keeps presets beside the backbone. Here each family module (`resnet.py`,
`mobilenet_v2.py`, `aig.py`, `channel_gated.py`, `lcnet.py`) declares its
public builders in a few lines with its family's factory (`resnet_builder`,
`mobilenet_v2_builder`), which calls both, so the documented arguments and
fixed values cannot drift from what the builder does.
"""

import inspect
import re
import textwrap

from dmnn_keras.methods import GatingConfig
from dmnn_keras.models.dynamic_model import small_input_shape

SMALL_DEFAULTS = ("with small CIFAR defaults (`input_shape` (32, 32, 3) unless `input_tensor` is "
                  "given)")


def make_builder(name, module, model_class, parameters, fixed, doc, defaults=None, small=False):
    """The public builder `name(**parameters, **kwargs)`, which returns `model_class(...)`.

    Args:
        name: its name, e.g. "AIGResNet50".
        module: the module it belongs to (the caller's `__name__`).
        model_class: the model it builds, e.g. `DynamicResNet`.
        parameters: dict, its own arguments and their defaults, in signature
            order (positional or keyword, as in a `def`).
        fixed: dict, arguments it always passes; a caller who gives one of
            them too gets the TypeError of a repeated keyword argument.
        doc: its docstring.
        defaults: None or a dict of defaults for some `**kwargs` (e.g.
            `controller_units`) that callers may override.
        small: a CIFAR-sized builder: `input_shape=None` means (32, 32, 3)
            unless `input_tensor` is given.

    A caller's `gating_config=` holds every `GatingConfig` field: the
    builder's defaults of them (`parameters`, `defaults`) then do not apply,
    its fixed ones (e.g. `gating`) must agree with it, and keywords the
    caller gives still replace its fields.

    Returns:
        The builder function; `help()` and `inspect.signature` show its
        arguments.

    Example:
    ```python
    import inspect
    from dmnn_keras.models.builders import make_builder
    from dmnn_keras.models.resnet import DynamicResNet
    TinyResNet = make_builder("TinyResNet", "my_models", DynamicResNet,
                              {"num_classes": 10}, {"gating": None, "stack_sizes": (1, 1, 1, 1)},
                              "A one-block-per-stage static ResNet.", small=True)
    str(inspect.signature(TinyResNet))  # '(num_classes=10, **kwargs)'
    TinyResNet(width_multiplier=0.25).output_shape  # (None, 10)
    ```
    """
    signature = inspect.Signature(
        [inspect.Parameter(key, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=value)
         for key, value in parameters.items()]
        + [inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)]
    )

    def builder(*args, **kwargs):
        try:
            arguments = signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{name}() {error}") from None
        given = set(arguments.arguments)
        arguments.apply_defaults()
        own = dict(arguments.arguments)
        passed = own.pop("kwargs")
        others = {**(defaults or {}), **passed}
        if passed.get("gating_config") is not None:
            _check_fixed_fields(name, fixed, passed["gating_config"])
            unset = set(GatingConfig.field_names()) - given - set(passed)
            own = {key: value for key, value in own.items() if key not in unset}
            others = {key: value for key, value in others.items() if key not in unset}
        if small:
            own["input_shape"] = small_input_shape(own["input_shape"], others)
        return model_class(**fixed, **own, **others)

    builder.__name__ = builder.__qualname__ = name
    builder.__module__ = module
    builder.__signature__ = signature
    builder.__doc__ = doc
    return builder


def gating_defaults(*names):
    """`{name: GatingConfig's default}`: builder parameters named like its fields.

    Example: `gating_defaults("flops_target") == {"flops_target": 0.5}`.
    """
    return {name: getattr(GatingConfig, name) for name in names}


def _check_fixed_fields(name, fixed, gating_config):
    """ValueError if a caller's `gating_config` disagrees with a field builder `name` fixes."""
    config = GatingConfig.coerce(gating_config)
    for key, value in fixed.items():
        if key in GatingConfig.field_names() and getattr(config, key) != value:
            raise ValueError(
                f"{name} has {key}={value!r}. Received: gating_config with "
                f"{key}={getattr(config, key)!r}"
            )


def builder_doc(summary, model_class, parameters, fixed, returns, example, about="",
                described=None, defaults=None, small=False, kwargs_examples=()):
    """The docstring of a `make_builder` builder, its Args written from its data.

    Args:
        summary: the first line.
        model_class: the model it builds (named in Args and Returns).
        parameters, fixed, defaults, small: as `make_builder`.
        returns: the Returns text after "A `{model_class}`".
        example: the lines of its runnable example (`expr  # literal` lines
            are checked by tests/test_docstrings.py).
        about: a paragraph after the summary (wrapped here), or "".
        described: dict, descriptions of some of `parameters`; the others
            are documented "as `{model_class}`".
        kwargs_examples: names of other `model_class` arguments to cite.

    Returns:
        The docstring (flush left, as `inspect.getdoc` shows it).

    Example:
    ```python
    from dmnn_keras.models.builders import builder_doc
    from dmnn_keras.models.resnet import DynamicResNet
    doc = builder_doc("A tiny ResNet.", DynamicResNet, {"num_classes": 10}, {"gating": None},
                      ": logits `[batch, 10]`.", ["model.output_shape  # (None, 10)"])
    doc.splitlines()[3]  # '    num_classes: as `DynamicResNet`.'
    ```
    """
    described = described or {}
    cls = model_class.__name__
    args = []
    shared = [key for key in parameters if key not in described]
    if shared:
        args.append(f"{', '.join(shared)}: as `{cls}`{', ' + SMALL_DEFAULTS if small else ''}.")
    args += [f"{key}: {described[key]}" for key in parameters if key in described]
    cited = "".join(f", `{key}`" for key in kwargs_examples)[2:]
    kwargs = f"**kwargs: other `{cls}` arguments" + (f" (e.g. {cited})" if cited else "")
    if fixed:
        kwargs += "; " + ", ".join(f"`{key}` is {value!r}" for key, value in fixed.items())
    if defaults:
        kwargs += "; " + ", ".join(f"`{key}` defaults to {value!r}"
                                   for key, value in defaults.items())
    args.append(kwargs + ".")
    sections = [summary, _wrap(about, 0, 0),
                "Args:\n" + "\n".join(_wrap(arg, 4, 8) for arg in args),
                "Returns:\n" + _wrap(f"A `{cls}`{returns}", 4, 4),
                "Example:\n```python\n" + "\n".join(example) + "\n```"]
    return "\n\n".join(section for section in sections if section) + "\n"


def _wrap(text, indent, continuation):
    """`text` wrapped to 79 columns, its first line indented by `indent`, the others by
    `continuation`; code in backticks is not split."""
    unbroken = re.sub(r"`[^`]*`", lambda code: code.group().replace(" ", "\0"), text)
    wrapped = textwrap.fill(unbroken, 79, initial_indent=" " * indent,
                            subsequent_indent=" " * continuation,
                            break_long_words=False, break_on_hyphens=False)
    return wrapped.replace("\0", " ")
