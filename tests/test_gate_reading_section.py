"""benchmarks/gate_reading: its flags and the side-by-side table of eager and compiled passes."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.gate_reading import parse_args, section  # noqa: E402


def _run(seconds, gates="a", top1=0.8):
    return {"seconds": seconds, "gates": gates, "top1": top1, "batches": 100}


def test_the_table_gives_the_medians_their_ratio_and_whether_the_gates_agree():
    results = {
        "dmnn_resnet_cifar10/default/10000/100": {
            "eager": [_run(30.0), _run(40.0)], "compiled": [_run(10.0), _run(12.0)]},
        "exits_resnet_cifar10/mirrored/10000/100": {  # the modes read different gates
            "eager": [_run(20.0)], "compiled": [_run(10.0, gates="b", top1=0.81)]},
        "dmnn_resnet_cifar10/mirrored/10000/100": {"eager": [_run(25.0)]},  # one mode only
    }
    text = section(results)
    assert ("| dmnn_resnet_cifar10 | default | 10000 / 100 | 35.0 (30.0, 40.0) | 11.0 (10.0, 12.0) "
            "| 0.31 | yes | 80.00% | 2 + 2 |") in text
    assert ("| exits_resnet_cifar10 | mirrored | 10000 / 100 | 20.0 (20.0) | 10.0 (10.0) | 0.50 "
            "| NO | 80.00%, 81.00% | 1 + 1 |") in text
    assert "dmnn_resnet_cifar10 | mirrored" not in text  # not compared until both modes ran
    results["dmnn_resnet_cifar10/default/800/100"] = results[
        "dmnn_resnet_cifar10/default/10000/100"]
    rows = [line.split(" | ")[:3] for line in section(results).splitlines() if "| dmnn" in line]
    assert rows == [["| dmnn_resnet_cifar10", "default", "800 / 100"],  # by preset, then images
                    ["| dmnn_resnet_cifar10", "default", "10000 / 100"]]


@pytest.mark.parametrize("argv, message", [
    (["--presets", "dmnn_resnet_cifar10,resnet_cifar10"],
     "--presets: unknown or none: resnet_cifar10; allowed: dmnn_resnet_cifar10, "
     "exits_resnet_cifar10"),
    (["--strategies", ","], "--strategies: unknown or none: ','; allowed: default, mirrored"),
    (["--images", "100,0"], "--images must be ints >= 1. Received: [100, 0]"),
    (["--images", "1e4"], "--images must be comma-separated ints. Received: '1e4'"),
    (["--repeats", "0"], "--repeats must be >= 1. Received: 0"),
])
def test_bad_flags_are_named(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err
