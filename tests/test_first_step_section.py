"""benchmarks/first_step: its flags and the side-by-side table of the two builds."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.first_step import parse_args, section  # noqa: E402


def test_the_table_gives_the_medians_their_ratio_and_every_measurement():
    results = {"dmnn_cifar": {"keras": [{"seconds": 20.0, "traces": 2},
                                        {"seconds": 22.0, "traces": 2}],
                              "dmnn_keras": [{"seconds": 10.5, "traces": 1},
                                             {"seconds": 11.5, "traces": 1}]},
               "dmnn_resnet50": {"keras": [{"seconds": 90.0, "traces": 2}]}}  # one build only
    text = section(results)
    assert ("| dmnn_cifar | 32 | 21.0 (20.0, 22.0) / 2 | 11.0 (10.5, 11.5) / 1 | 0.52 | 2 + 2 |"
            in text)
    assert "dmnn_resnet50" not in text  # not compared until both builds are measured


@pytest.mark.parametrize("argv, message", [
    (["--models", "dmnn_cifar,resnet18"], "--models: unknown resnet18; allowed: dmnn_cifar, "
                                          "dmnn_resnet50"),
    (["--repeats", "0"], "--repeats must be >= 1. Received: 0"),
])
def test_bad_flags_are_named(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err
