"""cifar10_pareto's verdict: the best DMNN recipe at <= 0.6x the twin's MACs, against the targets."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.cifar10_pareto import (  # noqa: E402
    DEEP_TWINS, LONG_TWINS, ROTATED, best_dmnn, reference, section, verdict,
)


def _row(top1, macs, flops_ratio=0.6, target=0.594, constant=0.5, std=0.05, latency=0.7,
         epochs=15, twin_epochs=15):
    return dict(top1=top1, macs=macs * 7.33e6, macs_ratio_to_twin=macs, flops_ratio=flops_ratio,
                flops_target=target, constant_gate_share=constant, macs_ratio_std_to_twin=std,
                latency_ratio_median=latency, latency_ratio_mean=latency,
                latency_ratio_median_to_static_s0=latency, epochs=epochs,
                twin_epochs=twin_epochs)


def test_best_recipe_is_the_most_accurate_within_the_macs_budget():
    results = {
        "static_s0": _row(0.80, 1.0), "static_s1": _row(0.79, 1.0),
        "static_w018": _row(0.75, 0.52), "static_w021": _row(0.77, 0.68),
        "static_w021_e25": _row(0.78, 0.68, epochs=25),
        "dmnn_t050_s0": _row(0.78, 0.50), "dmnn_t050_s1": _row(0.76, 0.51),
        "dmnn_t070_s0": _row(0.795, 0.70),  # more accurate, but over the 0.6x budget
        "dmnn_bounded_t050_s0": _row(0.765, 0.50),
    }
    family, rows = best_dmnn(results)
    assert family == "dmnn_t050" and rows == ["dmnn_t050_s0", "dmnn_t050_s1"]
    lines = "\n".join(verdict(results))
    assert "77.00% vs twin 79.50%: -2.500 points, missed" in lines
    assert "(static_w018, 0.52x, 15 epochs, 1 seed): +2.000 points, met" in lines  # nearest in MACs
    assert "static_w021" not in lines
    assert "MACs <= 0.6x the twin: 0.50500x, met" in lines
    assert "0.600, 0.600 vs 0.594, met" in lines
    assert "constant gates < 1/4: 0.50, missed" in lines
    results["dmnn_t050_s1"]["top1"] = 0.81
    assert "+0.000 points, met" in "\n".join(verdict(results))
    results["dmnn_t050_s1"]["top1"] = 0.7399  # mean 0.995 point above static_w018: not "1.00"
    assert "(static_w018, 0.52x, 15 epochs, 1 seed): +0.995 points, missed" in "\n".join(verdict(results))


def test_recipe_aimed_at_the_budget_counts_and_every_static_of_equal_macs_is_compared():
    """A family is chosen by the share it aims at; an overshoot shows as a missed MACs target."""
    results = {
        "static_s0": _row(0.80, 1.0), "static_s1": _row(0.79, 1.0),
        "static_w020": _row(0.778, 0.62), "static_w020_e25": _row(0.785, 0.62, epochs=25),
        "dmnn_bound_t060_s0": _row(0.782, 0.604, latency=0.81, epochs=10),
        "static_w020_e35": _row(0.80, 0.62, epochs=35),  # longer than the DMNN's 25 epochs
    }
    assert best_dmnn(results) == ("dmnn_bound_t060", ["dmnn_bound_t060_s0"])
    # two seeds beat one, even with a lower mean
    two_seeds = {**results, "dmnn_bound_t060_s1": _row(0.778, 0.598),
                 "dmnn_gaterange_t060_s0": _row(0.79, 0.599)}
    assert best_dmnn(two_seeds)[0] == "dmnn_bound_t060"
    del two_seeds["dmnn_bound_t060_s1"]
    assert best_dmnn(two_seeds)[0] == "dmnn_gaterange_t060"
    lines = "\n".join(verdict(results))
    assert "(static_w020, 0.62x, 15 epochs, 1 seed): +0.400 points, missed" in lines
    assert "(static_w020_e25, 0.62x, 25 epochs, 1 seed): -0.300 points, missed" in lines
    assert "static_w020_e35" not in lines  # compared at the DMNN's budget, not beyond
    assert "MACs <= 0.6x the twin: 0.60400x, missed" in lines
    assert "median 0.81x, mean 0.81x, missed" in lines


def test_the_seeds_of_a_static_net_of_equal_macs_are_averaged():
    results = {
        "static_s0": _row(0.80, 1.0), "static_s1": _row(0.79, 1.0),
        "static_w020_e25": _row(0.785, 0.62, latency=0.76, epochs=25),
        "static_w020_e25_s1": _row(0.795, 0.62, latency=0.80, epochs=25),
        "dmnn_bound_t060_s0": _row(0.80, 0.60, epochs=10),
    }
    lines = verdict(results)
    equal = [line for line in lines if "static net of equal MACs" in line]
    # one line for the family, its mean 79.00%: 80.00 - 79.00 = +1.000, latency mean 0.78
    assert equal == ["- >= 1 point above the static net of equal MACs (static_w020_e25, 0.62x, "
                     "25 epochs, 2 seeds): +1.000 points, met; latency median x static_s0: "
                     "DMNN 0.70, static 0.78"]


def test_deeper_family_is_judged_against_its_own_twin():
    """d2 DMNNs compete only with each other, against static_d2_*; statics of equal MACs by absolute MACs."""
    results = {
        "static_s0": _row(0.80, 1.0), "static_s1": _row(0.79, 1.0),
        "static_w020": _row(0.778, 0.62, latency=0.77),
        "static_d2_s0": _row(0.82, 0.99), "static_d2_s1": _row(0.81, 0.99),
        "dmnn_bound_t060_s0": _row(0.782, 0.60),
        "dmnn_d2_block_t060_s0": _row(0.815, 0.60, latency=0.7),
    }
    results["dmnn_d2_block_t060_s0"]["latency_ratio_median_to_static_s0"] = 0.68
    assert best_dmnn(results)[0] == "dmnn_bound_t060"
    assert best_dmnn(results, twins=DEEP_TWINS)[0] == "dmnn_d2_block_t060"
    lines = "\n".join(verdict(results, DEEP_TWINS))
    assert "DMNN 81.50% vs twin 81.50%: +0.000 points, met" in lines
    # 0.62 x static_s0's MACs is 0.63 x static_d2_s0's; both latencies x static_s0
    assert "(static_w020, 0.63x, 15 epochs, 1 seed): +3.700 points, met; latency median x static_s0: " \
        "DMNN 0.68, static 0.77" in lines
    assert reference("dmnn_d2_block_t060_s1") == "static_d2_s0"
    assert reference("static_w020") == "static_s0"


def test_no_verdict_without_the_twin_or_a_dmnn_in_budget():
    assert "not measured yet" in verdict({"static_s0": _row(0.8, 1.0)})[0]
    assert best_dmnn({"dmnn_t070_s0": _row(0.8, 0.7)}) == (None, [])


def test_the_section_has_one_verdict_per_family_measured():
    results = {"static_s0": _row(0.80, 1.0), "static_s1": _row(0.79, 1.0),
               "static_w020": _row(0.778, 0.62),
               "dmnn_lr10_t060_s0": _row(0.785, 0.596, epochs=10)}
    for row, result in results.items():
        result.update(row=row, distinct_costs=5, ratio_correct_confident=0.7,
                      ratio_misclassified=0.7, step_time_ratio=1.5, train_images=1e6,
                      train_seconds=600.0)
    text = section(results)
    assert text.count("Targets (") == 1 and "| static_e25_s0 | not run yet |" in text
    assert "1.00 M, 10 min |" in text and "timed" not in text
    # measured before compare_latency went image by image: marked (static_s0 is 1 by definition)
    lines = {line.split(" |")[0]: line for line in text.splitlines() if line.startswith("| ")}
    assert "| 0.70 / 0.70 * |" in lines["| dmnn_lr10_t060_s0"]
    assert "| 0.70 / 0.70 |" in lines["| static_s0"]
    for result in results.values():
        result["latency_order"] = ROTATED
    assert " * |" not in section(results)
    results["dmnn_lr10_t060_s0"]["timed_epochs"] = 22  # resumed: the last process's epochs
    assert "1.00 M, 10 min (22 of 25 epochs timed: resumed) |" in section(results)
    results.update({row: {**results["static_s0"], "row": row, "epochs": 25} for row in LONG_TWINS})
    results["dmnn_e25_t060_s0"] = {**results["dmnn_lr10_t060_s0"], "twin_epochs": 25}
    text = section(results)
    assert text.count("Targets (") == 2
    assert "MACs of static_e25_s0: dmnn_e25_t060" in text



def test_early_exit_rows_get_a_verdict_of_their_own_and_do_not_compete_with_dmnns():
    table = dict(flops_target=None, distinct_costs=3, ratio_correct_confident=0.5,
                 ratio_misclassified=0.7, step_time_ratio=1.1, train_images=3.2e6,
                 train_seconds=1800.0)  # the table's other columns
    results = {
        "static_s0": _row(0.80, 1.0), "static_s1": _row(0.79, 1.0),
        "static_w020": _row(0.778, 0.62),
        "dmnn_lr10_t060_s0": _row(0.785, 0.598), "dmnn_lr10_t060_s1": _row(0.784, 0.599),
        "exits_t060_s0": _row(0.80, 0.60, target=0.599, constant=0.0, std=0.2),
        "exits_t060_s1": _row(0.798, 0.60, target=0.599, constant=0.0, std=0.2),
    }
    for name, row in results.items():
        results[name] = {**table, **row}
    assert best_dmnn(results)[0] == "dmnn_lr10_t060"  # more accurate exits do not count here
    assert best_dmnn(results, kind="early-exit network") == (
        "exits_t060", ["exits_t060_s0", "exits_t060_s1"])
    body = section(results)
    assert "Targets (best DMNN aimed at <= 0.6x the MACs of static_s0: dmnn_lr10_t060" in body
    assert ("Targets (best early-exit network aimed at <= 0.6x the MACs of static_s0: exits_t060"
            in body)
    assert "early-exit network 79.90% vs twin 79.50%: +0.400 points, met" in body
    del results["exits_t060_s0"], results["exits_t060_s1"]
    assert "early-exit network" not in section(results)


def test_exits_trained_from_the_start_compete_in_the_twins_family():
    table = dict(flops_target=0.599, distinct_costs=3, ratio_correct_confident=0.5,
                 ratio_misclassified=0.7, step_time_ratio=1.1, train_images=3.2e6,
                 train_seconds=1800.0)
    results = {
        "static_s0": _row(0.80, 1.0), "static_s1": _row(0.79, 1.0),
        "static_w020_e25": _row(0.805, 0.62, epochs=25),
        "exits_t060_s0": _row(0.79, 0.60, constant=0.0, std=0.2, epochs=10),
        "exits_t060_s1": _row(0.79, 0.60, constant=0.0, std=0.2, epochs=10),
        "exits_joint_t060_s0": _row(0.81, 0.60, constant=0.0, std=0.2, epochs=25,
                                    twin_epochs=0),
    }
    for name, row in results.items():
        results[name] = {**table, **row}
    assert reference("exits_joint_t060_s0") == "static_s0"
    # two seeds beat one: the fine-tuned rows stay the best until the second joint seed
    assert best_dmnn(results, kind="early-exit network")[0] == "exits_t060"
    results["exits_joint_t060_s1"] = {**results["exits_joint_t060_s0"], "top1": 0.815}
    assert best_dmnn(results, kind="early-exit network") == (
        "exits_joint_t060", ["exits_joint_t060_s0", "exits_joint_t060_s1"])
    body = section(results)
    # judged against the static net trained its 25 epochs (no twin epochs charged)
    assert "(static_w020_e25, 0.62x, 25 epochs, 1 seed): +0.750 points, missed" in body
    assert "measured at" not in body  # the best aimed at 0.6x ran within it


def test_when_the_best_aimed_at_the_budget_runs_over_it_the_best_within_it_is_judged_too():
    table = dict(flops_target=0.599, distinct_costs=3, ratio_correct_confident=0.5,
                 ratio_misclassified=0.7, step_time_ratio=1.1, train_images=3.2e6,
                 train_seconds=1800.0)
    results = {"static_s0": _row(0.80, 1.0), "static_s1": _row(0.79, 1.0)}
    for seed in (0, 1):
        results[f"exits_joint_t060_s{seed}"] = _row(0.82, 0.605, constant=0.0, std=0.2,
                                                    epochs=25, twin_epochs=0)
        results[f"exits_joint_t059_s{seed}"] = _row(0.815, 0.595, constant=0.0, std=0.2,
                                                    epochs=25, twin_epochs=0)
    for name, row in results.items():
        results[name] = {**table, **row}
    kind = "early-exit network"
    assert best_dmnn(results, kind=kind)[0] == "exits_joint_t060"
    assert best_dmnn(results, kind=kind, measured_within=True)[0] == "exits_joint_t059"
    body = section(results)
    aimed = body.index("Targets (best early-exit network aimed at <= 0.6x the MACs of static_s0: "
                       "exits_joint_t060")
    within = body.index("Targets (best early-exit network measured at <= 0.6x the MACs of "
                        "static_s0: exits_joint_t059")
    assert aimed < within and "MACs <= 0.6x the twin: 0.60500x, missed" in body[aimed:within]
    assert "MACs <= 0.6x the twin: 0.59500x, met" in body[within:]
    for seed in (0, 1):  # nothing within the budget: no second verdict
        results[f"exits_joint_t059_s{seed}"]["macs_ratio_to_twin"] = 0.601
    assert "measured at" not in section(results)


def test_a_row_stops_before_training_when_its_twin_is_not_trained(tmp_path, monkeypatch):
    """static_s0 comes back from its preset; the deeper family's twin (no preset) must be trained."""
    from benchmarks.cifar10_pareto import main

    monkeypatch.chdir(tmp_path)  # no runs/pareto here
    with pytest.raises(SystemExit, match=r"measured against \['static_d2_s0'\].*run --only "
                                         r"static_d2_s0,dmnn_d2_joint_t060_s0"):
        main(["--only", "dmnn_d2_joint_t060_s0"])
    assert os.listdir(tmp_path / "runs" / "pareto") == ["static_s0"]  # restored, nothing started
    assert os.listdir(tmp_path / "runs" / "pareto" / "static_s0") == ["model.keras"]


def test_the_twin_is_also_judged_trained_as_long_as_the_dmnn():
    """A DMNN of 25 epochs in all (its twin's charged) also meets the twin trained 25 epochs."""
    results = {
        "static_s0": _row(0.79, 1.0), "static_s1": _row(0.79, 1.0),
        "dmnn_inplace_t060_s0": _row(0.80, 0.60, epochs=25, twin_epochs=0),
        "dmnn_inplace_t060_s1": _row(0.79, 0.60, epochs=25, twin_epochs=0),
    }
    lines = "\n".join(verdict(results))
    assert "twin (15 epochs; the DMNN 25 in all): DMNN 79.50% vs twin 79.00%: +0.500 points, met" \
        in lines
    assert "the twin trained as long (25 epochs): not measured" in lines
    results.update({"static_e25_s0": _row(0.82, 1.0, epochs=25),
                    "static_e25_s1": _row(0.81, 1.0, epochs=25)})
    lines = "\n".join(verdict(results))
    assert ("the twin trained as long (static_e25_s0, 25 epochs, 2 seed(s)): DMNN 79.50% vs "
            "81.50%: -2.000 points, missed") in lines
    # trained as long as its twin: no second comparison
    results["static_s0"]["epochs"] = results["static_s1"]["epochs"] = 25
    assert "trained as long" not in "\n".join(verdict(results))


if __name__ == "__main__":
    pytest.main([__file__])


def test_a_lost_reference_twin_is_restored_from_its_preset(tmp_path, monkeypatch):
    """static_s0's model comes back from resnet_cifar10 (same logits); a row with no preset does not."""
    import keras
    import numpy as np

    import dmnn_keras as dk
    from benchmarks import cifar10_pareto

    monkeypatch.setattr(cifar10_pareto, "RUNS", str(tmp_path))
    assert cifar10_pareto.restore_from_preset("static_s0") == "resnet_cifar10"
    assert cifar10_pareto.restore_from_preset("static_s1") is None
    assert not (tmp_path / "static_s1").exists()
    restored = keras.models.load_model(tmp_path / "static_s0" / "model.keras")
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(restored.predict(images, verbose=0),
                                  dk.from_preset("resnet_cifar10").predict(images, verbose=0))
    # Measured against without its run's report: the twin's MACs come from its architecture.
    assert cifar10_pareto.reference_flops("dmnn_inplace_t060_s0") == 7328768
    assert cifar10_pareto.reference_flops("dmnn_d2_inplace_t060_s0") == 7256112
    # A fine-tune is charged for its twin's training: a restored twin is not enough.
    with pytest.raises(SystemExit, match="needs its twin trained here: run --only static_s0"):
        cifar10_pareto.train_row("dmnn_lr10_t060_s0")


def test_the_section_says_where_its_rows_were_measured():
    results = {"static_s0": _row(0.80, 1.0), "static_s1": _row(0.79, 1.0),
               "dmnn_t050_s0": {**_row(0.78, 0.50), "row": "dmnn_t050_s0",
                                "machine": "AMD EPYC, 2 cores", "date": "2026-12-02"}}
    for r in results.values():
        r.update(macs_ratio_std_to_twin=0.0, distinct_costs=None, ratio_correct_confident=None,
                 ratio_misclassified=None, step_time_ratio=1.0, train_images=1e6,
                 train_seconds=60.0, latency_order=ROTATED)
    assert ("only): AMD EPYC, 2 cores, 2026-12-02: dmnn_t050_s0; every other row (2): an "
            "earlier session's machine, not recorded") in section(results)
