"""Distillation, gate schedules, BatchNorm recalibration and the Lagrangian resource loss."""

import keras
import numpy as np
import pytest

import dmnn_keras as dk
from dmnn_keras.batch_norm import batch_norm_layers
from dmnn_keras.gates import gumbel_gates
from dmnn_keras.flops_calibration import InferenceFlopsRatio
from dmnn_keras.training import BatchNormRecalibration, FlopsTargetSchedule, GateNoiseSchedule
from dmnn_keras.training.gate_schedules import MIN_TARGET

pytestmark = pytest.mark.slow  # 40 s or more per file: run first (tests/conftest.py)


def _data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 255, (n, 32, 32, 3)).astype("float32"),
            rng.integers(0, 10, n).astype("int32"))


def _compiled(model):
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_distillation_weight_zero_is_plain_training_and_weight_adds_the_kl():
    x, y = _data(8)
    keras.utils.set_random_seed(0)
    student = _compiled(dk.ResNet())
    teacher = dk.ResNet(seed=None)
    y_pred = student(x, training=False)
    plain = float(student.compute_loss(x, y, y_pred, training=False))
    student.distill_from(teacher, weight=0.0)
    assert float(student.compute_loss(x, y, y_pred, training=False)) == plain
    student.distill_from(teacher, weight=0.5, temperature=4.0)
    t = np.asarray(teacher(x, training=False), np.float64) / 4.0
    s = np.asarray(y_pred, np.float64) / 4.0
    log_p = t - np.log(np.exp(t - t.max(1, keepdims=True)).sum(1, keepdims=True)) - t.max(1, keepdims=True)
    log_q = s - np.log(np.exp(s - s.max(1, keepdims=True)).sum(1, keepdims=True)) - s.max(1, keepdims=True)
    kl = (np.exp(log_p) * (log_p - log_q)).sum(1).mean()
    distilled = float(student.compute_loss(x, y, y_pred, training=False))
    assert distilled == pytest.approx(plain + 0.5 * 16.0 * kl, rel=1e-4)


def test_distillation_checks_the_teacher_and_is_not_saved(tmp_path):
    student = dk.DMNNResNet()
    with pytest.raises(ValueError, match="teacher must output 10 logits"):
        student.distill_from(dk.ResNet(num_classes=100))
    with pytest.raises(ValueError, match="temperature"):
        student.distill_from(dk.ResNet(), temperature=0)
    teacher = dk.ResNet()
    student.distill_from(teacher)
    assert not any(v is w for v in student.variables for w in teacher.variables)
    x, y = _data(8)
    _compiled(student).fit(x, y, batch_size=4, epochs=1, verbose=0)
    student.save(tmp_path / "student.keras")
    loaded = keras.models.load_model(tmp_path / "student.keras")
    assert loaded.distillation is None
    assert len(loaded.weights) == len(student.weights)


def _kl(teacher, student, temperature):
    """T^2 KL(softmax(teacher / T) || softmax(student / T)), batch mean, in float64."""
    def log_softmax(logits):
        z = np.asarray(logits, np.float64) / temperature
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))
    log_p, log_q = log_softmax(teacher), log_softmax(student)
    return temperature**2 * (np.exp(log_p) * (log_p - log_q)).sum(1).mean()


def test_in_place_distillation_adds_the_full_networks_loss_and_its_kl(tmp_path):
    x, y = _data(8)
    keras.utils.set_random_seed(0)
    model = _compiled(dk.DMNNResNet(flops_target=0.5, groups=2, split="partition", dual_step=0.0))
    for gate in gumbel_gates(model):
        gate.noise_scale.assign(0.0)  # deterministic training-mode gates
    for controller in model.controllers:  # the second sub-block of every block off
        controller.logits_dense.bias.assign([5.0, -5.0])
    weights = model.get_weights()
    y_pred = model(x, training=True)
    plain = float(model.compute_loss(x, y, y_pred))
    full = np.asarray(dk.force_gates(model, 1.0)(x, training=True))
    full_loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(y, full, from_logits=True)))
    assert np.abs(full - np.asarray(y_pred)).max() > 1e-3  # the gated network is not the full one
    expected = plain + full_loss + 0.5 * _kl(full, y_pred, 2.0)
    model.distill_in_place(weight=0.5, temperature=2.0)
    assert float(model.compute_loss(x, y, y_pred)) == pytest.approx(expected, rel=1e-4)
    # In evaluation the full network does not run (its BatchNorm statistics would move).
    y_pred = model(x, training=True)  # the gated pass again, with the losses `plain` read
    moving = [bn.moving_mean.numpy() for bn in batch_norm_layers(model)]
    assert float(model.compute_loss(x, y, y_pred, training=False)) == pytest.approx(plain, rel=1e-4)
    assert all((bn.moving_mean.numpy() == m).all() for bn, m in zip(batch_norm_layers(model), moving))
    # The same loss from the traced training step, which then trains the full network too.
    model.set_weights(weights)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(expected, rel=1e-4)
    assert all(c.forced_rate is None for c in model.controllers)
    assert not model.resource_loss.suspended
    model.save(tmp_path / "model.keras")  # the full network is the model itself: nothing more
    assert keras.models.load_model(tmp_path / "model.keras").distillation is None
    model.distill_from(None)
    assert model.distillation is None


def test_in_place_distillation_leaves_the_resource_loss_to_the_gated_pass():
    x, y = _data(8)
    model = _compiled(dk.DMNNResNet(flops_target=0.5, dual_step=0.5))
    model.distill_in_place()
    y_pred = model(x, training=True)
    multiplier = float(model.resource_loss.multiplier.numpy())
    ratio = float(model.resource_loss.flops_ratio_tracker.result())
    model.compute_loss(x, y, y_pred)  # runs the all-on pass (FLOPs ratio 1)
    assert float(model.resource_loss.multiplier.numpy()) == multiplier
    assert float(model.resource_loss.flops_ratio_tracker.result()) == ratio


def test_in_place_distillation_needs_a_dmnn_and_checks_its_arguments():
    with pytest.raises(ValueError, match="needs a DMNN.*ResNet"):
        dk.ResNet().distill_in_place()
    with pytest.raises(ValueError, match="needs a DMNN.*AIGController"):
        dk.AIGResNet().distill_in_place()
    with pytest.raises(ValueError, match="weight must be a number >= 0. Received: weight=-1"):
        dk.DMNNResNet().distill_in_place(weight=-1)
    with pytest.raises(ValueError, match="temperature"):
        dk.DMNNResNet().distill_in_place(temperature=0)


class _Record(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.targets, self.noise, self.temperature, self.batch_targets = [], [], [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.batch_targets.append(float(self.model.resource_loss.target.numpy()))

    def on_epoch_end(self, epoch, logs=None):
        self.targets.append(float(self.model.resource_loss.target.numpy()))
        gate = gumbel_gates(self.model)[0]
        self.noise.append(float(gate.noise_scale.numpy()))
        self.temperature.append(float(gate.temperature_value.numpy()))


def test_schedules_set_the_values_they_promise():
    x, y = _data(16)
    model = _compiled(dk.DMNNResNet(flops_target=0.5))
    record = _Record()
    model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[
        FlopsTargetSchedule(epochs=2), GateNoiseSchedule(4.0, 0.5, noise_off_epochs=1), record])
    # At the end of epoch e the target is the one for e + 1 epochs: 1 - 0.5 * (e + 1) / 2.
    assert record.targets == pytest.approx([0.75, 0.5, 0.5, 0.5])
    # Per batch (2 a epoch) in between: 1 - 0.5 * (e + b / 2) / 2.
    assert record.batch_targets[:4] == pytest.approx([1.0, 0.875, 0.75, 0.625])
    assert record.noise == [1.0, 1.0, 1.0, 0.0]
    assert record.temperature == pytest.approx([4.0, 2.0, 1.0, 0.5])
    assert FlopsTargetSchedule(3).target_at(1.5, 0.4) == pytest.approx(0.7)


def test_target_correction_trains_at_the_ratio_inference_runs():
    x, y = _data(16)
    clean = _data(8, seed=1)[0]
    model = _compiled(dk.DMNNResNet(flops_target=0.5))
    schedule = FlopsTargetSchedule(epochs=1, images=clean, batches=1, batch_size=8)
    record = _Record()
    meter = InferenceFlopsRatio(model, clean, 8)
    measured = []

    class Measure(keras.callbacks.Callback):  # before the schedule: the ratio it will see
        def on_epoch_end(self, epoch, logs=None):
            measured.append(meter())

    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0,
                        callbacks=[Measure(), schedule, record])
    trained = history.history["flops_ratio"]
    # Every epoch ends after the annealing: next target = 0.5 + training ratio - inference ratio.
    expected = [min(max(0.5 + t - m, MIN_TARGET), 1.0) for t, m in zip(trained, measured)]
    assert [c[0] for c in schedule.corrections] == [0, 1]
    assert [c[1:3] for c in schedule.corrections] == pytest.approx(
        list(zip(trained, measured)), abs=1e-6)
    assert any(abs(t - m) > 1e-3 for t, m in zip(trained, measured))  # else nothing shows
    assert [c[3] for c in schedule.corrections] == pytest.approx(expected, abs=1e-6)
    assert [c[4] for c in schedule.corrections] == [0.0] * 2  # thresholds left alone
    assert record.targets == pytest.approx(expected, abs=1e-6)
    # Stateless: each target depends on its own epoch only, not on the previous offsets.
    assert record.batch_targets[2:4] == pytest.approx([expected[0]] * 2, abs=1e-6)
    # Resumed (a new schedule, the variable restored): the offset continues from the variable.
    resumed = FlopsTargetSchedule(epochs=1, images=clean, batches=1, batch_size=8)
    resumed.set_model(model)
    resumed.set_params({"epochs": 4, "steps": 2})
    resumed.on_train_begin()
    resumed.on_epoch_begin(3)
    assert float(model.resource_loss.target.numpy()) == pytest.approx(expected[-1], abs=1e-6)
    with pytest.raises(ValueError, match="flops_ratio"):
        resumed.on_epoch_end(3, {"loss": 1.0})


def test_target_correction_can_shift_the_gate_thresholds_to_the_target():
    x, y = _data(16)
    clean = _data(16, seed=1)[0]
    model = _compiled(dk.DMNNResNet(flops_target=0.6))
    schedule = FlopsTargetSchedule(epochs=1, images=clean, batches=1, batch_size=16,
                                   shift_gates=True)
    after = []

    class Measure(keras.callbacks.Callback):  # after the schedule: the ratio it left
        def on_epoch_end(self, epoch, logs=None):
            after.append(InferenceFlopsRatio(self.model, clean, 16)())

    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[schedule, Measure()])
    [(_, _, _, _, shift)] = schedule.corrections
    assert shift != 0.0
    # The correction leaves the inference ratio on the clean images at the target.
    assert after == pytest.approx([0.6], abs=0.03)
    with pytest.raises(ValueError, match="shift_gates"):
        FlopsTargetSchedule(epochs=1, shift_gates=True)


def test_schedules_longer_than_the_run_are_refused():
    x, y = _data(8)
    model = _compiled(dk.DMNNResNet())
    with pytest.raises(ValueError, match="epochs=5 is longer than the run"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[FlopsTargetSchedule(epochs=5)])
    with pytest.raises(ValueError, match="noise_off_epochs=3 is longer"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[GateNoiseSchedule(noise_off_epochs=3)])
    with pytest.raises(ValueError, match="gated model"):
        _compiled(dk.ResNet()).fit(x, y, epochs=1, verbose=0,
                                  callbacks=[FlopsTargetSchedule(epochs=1)])
    with pytest.raises(ValueError, match="start_temperature"):
        GateNoiseSchedule(start_temperature=2.0)


def test_recalibration_changes_only_batch_norm_moving_statistics():
    x, y = _data(32)
    model = dk.DMNNResNet()
    norms = batch_norm_layers(model)
    moving = {id(v) for bn in norms for v in (bn.moving_mean, bn.moving_variance)}
    before = {id(v): np.array(v.numpy()) for v in model.variables}
    assert dk.recalibrate_batch_norm(model, x, batch_size=16) == 32
    changed = {id(v) for v in model.variables if not np.array_equal(before[id(v)], v.numpy())}
    assert changed and changed <= moving
    # The moving mean is the exact average of the batch means of the first BatchNorm's input.
    first = model.get_layer("conv1_bn")
    features = keras.Model(model.input, model.get_layer("conv1_conv").output)(x).numpy()
    expected = np.mean([features[:16].mean((0, 1, 2)), features[16:].mean((0, 1, 2))], axis=0)
    np.testing.assert_allclose(first.moving_mean.numpy(), expected, rtol=1e-4, atol=1e-5)
    assert all(float(g.noise_scale.numpy()) == 1.0 for g in gumbel_gates(model))
    callback = BatchNormRecalibration(x, batches=1)
    _compiled(model).fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    assert callback.images_used == 32  # one array batch of the callback's default size
    with pytest.raises(ValueError, match="batches"):
        dk.recalibrate_batch_norm(model, x, batches=0)


def test_lagrange_multiplier_rises_while_the_ratio_is_above_target():
    layer = dk.ResourceLoss(0.5, path_flops=[[100, 100]], always_on_flops=0, dual_step=0.1)
    logits, gates = np.zeros((2, 10), "float32"), np.ones((2, 2), "float32")
    layer([logits, gates], training=True)  # ratio 1.0: violation 0.5
    assert float(layer.multiplier.numpy()) == pytest.approx(0.05)
    layer([logits, gates], training=True)
    assert float(layer.multiplier.numpy()) == pytest.approx(0.10)
    layer([logits, gates], training=False)  # inference leaves it alone
    assert float(layer.multiplier.numpy()) == pytest.approx(0.10)
    # loss = penalty 0.5 + multiplier (before this call's step) 0.1 * violation 0.5
    assert float(layer.losses[-1]) == pytest.approx(0.5 + 0.05)
    with pytest.raises(ValueError, match="dual_step"):
        dk.ResourceLoss(0.5, path_flops=[[1]], always_on_flops=0, dual_step=-1)


def test_uncertain_images_are_pulled_toward_more_macs_and_confident_ones_toward_fewer():
    import tensorflow as tf

    # Half of the MACs always run (min ratio 0.5). Image 0 is confident (u = 0), image 1
    # uniform (u = 1): with spread 1 their targets are clip(0.75 -/+ 0.5, 0.5, 1) = 0.5, 1.
    kwargs = dict(path_flops=[[100, 100]], always_on_flops=200)
    logits = np.array([[50.0] + [0.0] * 9, [0.0] * 10], "float32")
    gates = tf.Variable(np.array([[1, 0], [1, 0]], "float32"))  # both at ratio 0.75
    plain = dk.ResourceLoss(0.75, **kwargs)
    spread = dk.ResourceLoss(0.75, uncertainty_spread=1.0, **kwargs)
    plain([logits, gates])
    with tf.GradientTape() as tape:
        spread([logits, gates])
        loss = spread.losses[-1]
    # (0.75 - 0.5)^2 and (0.75 - 1)^2, averaged: 0.0625 on top of the batch terms.
    assert float(loss) - float(plain.losses[-1]) == pytest.approx(0.0625, abs=1e-6)
    grad = tape.gradient(loss, gates).numpy()
    assert (grad[0] > 0).all() and (grad[1] < 0).all()  # fewer MACs for 0, more for 1
    # Uncertainty only sets the targets: no gradient reaches the logits.
    logits_variable = tf.Variable(logits)
    with tf.GradientTape() as tape:
        spread([logits_variable, gates])
    assert tape.gradient(spread.losses[-1], logits_variable) is None
    assert dk.ResourceLoss.from_config(spread.get_config()).uncertainty_spread == 1.0
    for bad in (-1.0, True, float("nan")):
        with pytest.raises(ValueError, match="uncertainty_spread must be a number >= 0"):
            dk.ResourceLoss(0.5, uncertainty_spread=bad, **kwargs)
    with pytest.raises(ValueError, match=r"logits \[batch, classes\].*\(2, 4, 4, 8\)"):
        dk.ResourceLoss(0.5, uncertainty_spread=1.0, **kwargs)(
            [np.zeros((2, 4, 4, 8), "float32"), gates])


def test_uncertainty_from_input_reads_the_second_input():
    # The per-image targets of a difficulty head's logits, given as the second input, are
    # those of the same logits given as the outputs.
    kwargs = dict(path_flops=[[100, 100]], always_on_flops=200, uncertainty_spread=1.0)
    logits = np.array([[50.0] + [0.0] * 9, [0.0] * 10], "float32")
    gates = np.array([[1, 0], [1, 0]], "float32")
    own = dk.ResourceLoss(0.75, **kwargs)
    own([logits, gates])
    head = dk.ResourceLoss(0.75, uncertainty_from_input=True, **kwargs)
    outputs = np.zeros((2, 3), "float32")  # passed through, not read
    assert np.asarray(head([outputs, logits, gates])).shape == (2, 3)
    assert float(head.losses[-1]) == pytest.approx(float(own.losses[-1]))
    # Read from the (uninformative) outputs instead, both images get the batch target: 0.0625 less.
    from_outputs = dk.ResourceLoss(0.75, **kwargs)
    from_outputs([np.zeros((2, 10), "float32"), gates])
    assert float(head.losses[-1]) - float(from_outputs.losses[-1]) == pytest.approx(0.0625)
    assert dk.ResourceLoss.from_config(head.get_config()).uncertainty_from_input
    with pytest.raises(ValueError, match="uncertainty_from_input must be True .with "
                                         "uncertainty_spread > 0."):
        dk.ResourceLoss(0.75, path_flops=[[100, 100]], always_on_flops=200,
                        uncertainty_from_input=True)


def test_uncertainty_spread_needs_logits_and_the_dmnn_loss():
    tiny = dict(stack_sizes=(1, 1, 1, 1), width_multiplier=0.125, input_shape=(32, 32, 3),
                num_classes=10)
    for gating in (dict(), dict(gating="lcnet", groups=1)):  # the ResourceLoss gatings
        model = dk.DynamicResNet(uncertainty_spread=0.5, **tiny, **gating)
        assert model.resource_loss.uncertainty_spread == 0.5
    for bad in (dict(include_top=False, pooling="avg"), dict(classifier_activation="softmax")):
        with pytest.raises(ValueError, match="uncertainty_spread > 0 reads the model's logits"):
            dk.DynamicResNet(uncertainty_spread=0.5, **tiny, **bad)
    with pytest.raises(ValueError, match="gating='aig'"):
        dk.DynamicResNet(uncertainty_spread=0.5, gating="aig", groups=1, **tiny)


def test_rate_terms_use_the_rate_that_meets_the_flops_target():
    # Half of the MACs always run: t = 0.75 needs r = (0.75 * 400 - 200) / 200 = 0.5.
    layer = dk.ResourceLoss(0.75, path_flops=[[100, 100]], always_on_flops=200)
    logits = np.zeros((2, 10), "float32")
    one_path = np.array([[1, 0], [1, 0]], "float32")  # rate 0.5, ratio 0.75: no loss
    layer([logits, one_path])
    assert float(layer.rate_target()) == pytest.approx(0.5)
    assert float(layer.losses[-1]) == pytest.approx(0.0)
    # Per gate, the same gates cost (1 - 0.5)^2 and (0 - 0.5)^2: a sub-block always on and
    # one always off are not what the target asks of each sub-block.
    per_gate = dk.ResourceLoss(0.75, path_flops=[[100, 100]], always_on_flops=200,
                               rate_loss="gate")
    per_gate([logits, one_path])
    assert float(per_gate.losses[-1]) == pytest.approx(0.25)
    alternating = np.array([[1, 0], [0, 1]], "float32")  # each sub-block for half the images
    per_gate([logits, alternating])
    assert float(per_gate.losses[-1]) == pytest.approx(0.0)
    # Bounded: block rates as "block", plus each gate's rate kept in [0.1, 0.9]: the always-on
    # and always-off sub-blocks each cost 0.1^2; sub-blocks that alternate cost nothing.
    bounded = dk.ResourceLoss(0.75, path_flops=[[100, 100]], always_on_flops=200,
                              rate_loss="bounded")
    bounded([logits, one_path])
    assert float(bounded.losses[-1]) == pytest.approx(0.01)
    bounded([logits, alternating])
    assert float(bounded.losses[-1]) == pytest.approx(0.0)
    restored = dk.ResourceLoss.from_config(
        dk.ResourceLoss(0.5, [[1]], 0, rate_loss="bounded", gate_rate_bounds=(0.2, 0.7)).get_config())
    assert restored.gate_rate_bounds == (0.2, 0.7) and restored.rate_loss == "bounded"
    with pytest.raises(ValueError, match="rate_loss"):
        dk.ResourceLoss(0.5, path_flops=[[1]], always_on_flops=0, rate_loss="image")
    with pytest.raises(ValueError, match="gate_rate_bounds"):
        dk.ResourceLoss(0.5, path_flops=[[1]], always_on_flops=0, gate_rate_bounds=(0.9, 0.1))


def test_with_pairs_of_gates_the_rate_target_counts_a_pair_only_when_both_run():
    # Cross-split block: 100 MACs per gate, 50 per pair (i, j), i != j; 200 always on. Independent
    # gates at rate r run 200 + 200 r + 100 r^2 MACs: t = 400 / 500 = 0.8 needs r = sqrt(3) - 1,
    # not the linear share (400 - 200) / 300 = 2/3.
    layer = dk.ResourceLoss(0.8, path_flops=[[100, 100]], always_on_flops=200,
                            pair_flops=[[[0, 1, 50], [1, 0, 50]]])
    layer([np.zeros((2, 10), "float32"), np.ones((2, 2), "float32")])
    assert float(layer.rate_target()) == pytest.approx(np.sqrt(3) - 1, rel=1e-5)
    assert float(layer.rate_target()) != pytest.approx(2 / 3, rel=1e-3)
