"""accuracy_by_uncertainty: quarters by uncertainty, the table, and its arguments."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.accuracy_by_uncertainty import by_quarter, parse_args, section  # noqa: E402
from dmnn_keras.layers.resource_loss import prediction_uncertainty  # noqa: E402


def test_quarters_follow_the_uncertainty_not_the_order_of_the_images():
    uncertainty = np.array([7, 6, 5, 4, 3, 2, 1, 0], "float32")
    values = np.arange(8, dtype="float32")
    assert by_quarter(uncertainty, values) == [6.5, 4.5, 2.5, 0.5]


def test_uncertainty_is_zero_when_certain_and_one_when_uniform():
    logits = np.array([[100.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]], "float32")
    assert np.allclose(np.asarray(prediction_uncertainty(logits)), [0.0, 1.0], atol=1e-5)


def test_the_table_has_one_cell_per_quarter():
    results = {"dmnn_lr10_t060_s0": {"dmnn": [0.99, 0.9, 0.7, 0.5], "twin": [0.99, 0.9, 0.7, 0.55],
                                     "ratio": [0.72, 0.71, 0.7, 0.69]}}
    body = section(results, 10000)
    assert "| dmnn_lr10_t060_s0 | static_s0 | 99.0 / 99.0 (+0.0), 0.720 |" in body
    assert body.rstrip().endswith("50.0 / 55.0 (-5.0), 0.690 |")


def test_rows_that_are_not_fine_tuned_dmnns_are_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--rows", "static_s0"])
    assert "--rows: ['static_s0'] are not fine-tuned rows" in capsys.readouterr().err
