"""Training recipes' library: presets, model registry, strategies, callbacks, reports, figures.

`run_training(config)` is what `recipes/train.py` runs; `evaluate_and_report`
is what `recipes/evaluate.py` runs. The names below load on first use, so that
`from dmnn_keras.training import PRESETS` does not import the data pipelines
or matplotlib.
"""

from dmnn_keras.lazy_imports import lazy_attributes as _lazy_attributes

__getattr__, __dir__ = _lazy_attributes(__name__, {
    **dict.fromkeys(["PRESETS", "TrainConfig", "resolve_config", "scaled_learning_rate"],
                    "dmnn_keras.training.presets"),
    **dict.fromkeys(["MODELS", "ModelEntry", "build_model", "get_model_entry"],
                    "dmnn_keras.training.registry"),
    **dict.fromkeys(["evaluate_and_report", "run_training"], "dmnn_keras.training.run"),
    **dict.fromkeys(["BatchNormRecalibration", "ConstantGateFixing", "FlopsCalibration",
                     "FlopsTargetSchedule", "GateNoiseSchedule"],
                    "dmnn_keras.training.gate_schedules"),
})
