"""Training recipes' library: presets, model registry, strategies, callbacks, reports, figures.

`run_training(config)` is what `recipes/train.py` runs; `evaluate_and_report`
is what `recipes/evaluate.py` runs.
"""

from dmnn_keras.training.presets import PRESETS, TrainConfig, resolve_config, scaled_learning_rate
from dmnn_keras.training.registry import MODELS, ModelEntry, build_model, get_model_entry
from dmnn_keras.training.run import evaluate_and_report, run_training
from dmnn_keras.training.gate_schedules import (
    BatchNormRecalibration,
    FlopsCalibration,
    FlopsTargetSchedule,
    GateNoiseSchedule,
)
