"""Learning-rate schedules, in optimizer steps, from epoch-based settings."""

import keras


@keras.saving.register_keras_serializable(package="dmnn_keras")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 over `warmup_steps`, then `schedule(step - warmup_steps)`."""

    def __init__(self, schedule, warmup_steps, peak):
        self.schedule = schedule
        self.warmup_steps = int(warmup_steps)
        self.peak = float(peak)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
        after = self.schedule(keras.ops.maximum(step - self.warmup_steps, 0.0))
        return keras.ops.where(step < self.warmup_steps, warm, after)

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "warmup_steps": self.warmup_steps,
            "peak": self.peak,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)


def make_schedule(name, learning_rate, steps_per_epoch, epochs, decay_epochs=(),
                  warmup_epochs=0.0):
    """A learning-rate schedule over `epochs * steps_per_epoch` steps.

    Args:
        name: "cosine" (cosine decay to 0 after the warmup), "step" (divide by
            10 at every epoch of `decay_epochs`) or "constant".
        learning_rate: the peak rate (already scaled with the batch).
        steps_per_epoch, epochs: ints.
        decay_epochs: epochs of the "step" schedule's drops.
        warmup_epochs: linear warmup length in epochs (may be fractional).

    Returns:
        a float (constant) or a `keras.optimizers.schedules.LearningRateSchedule`.
    """
    warmup_steps = int(round(warmup_epochs * steps_per_epoch))
    total = max(epochs * steps_per_epoch - warmup_steps, 1)
    if name == "cosine":
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, total)
    elif name == "step":
        boundaries = [int(e * steps_per_epoch) - warmup_steps for e in sorted(decay_epochs)]
        values = [learning_rate * 0.1**i for i in range(len(boundaries) + 1)]
        if not boundaries:
            schedule = learning_rate
        else:
            schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    elif name == "constant":
        schedule = learning_rate
    else:
        raise ValueError(
            f"schedule must be one of ('cosine', 'step', 'constant'). Received: schedule={name!r}"
        )
    if warmup_steps:
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            # A constant rate after the warmup.
            schedule = keras.optimizers.schedules.ExponentialDecay(learning_rate, 1, 1.0)
        return WarmupSchedule(schedule, warmup_steps, learning_rate)
    return schedule
