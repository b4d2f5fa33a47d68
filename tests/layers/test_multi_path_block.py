import numpy as np
import pytest

from dmnn_keras.layers import MultiPathBlock, bottleneck_path_width
from dmnn_keras.layers.multi_path_block import shortcut_kind


def _block(**kwargs):
    defaults = dict(kind="bottleneck", filters=32, groups=4, path_width=4, strides=1)
    defaults.update(kwargs)
    return MultiPathBlock(**defaults)


def test_output_is_shortcut_plus_gated_paths():
    block = _block(strides=2)
    x = np.random.rand(2, 8, 8, 16).astype("float32")
    gates = np.array([[1, 0, 1, 0], [0, 0, 0, 0]], "float32")
    out = block([x, gates]).numpy()
    assert out.shape == (2, 4, 4, 32)
    shortcut = block.run_shortcut(x).numpy()
    expected0 = np.maximum(shortcut[0] + block.run_path(x, 0)[0] + block.run_path(x, 2)[0], 0)
    np.testing.assert_allclose(out[0], expected0, atol=1e-5)
    np.testing.assert_allclose(out[1], np.maximum(shortcut[1], 0), atol=1e-6)


def test_inverted_residual_slices_and_identity():
    block = MultiPathBlock("inverted_residual", filters=8, groups=4, path_width=2, expand=False)
    x = np.random.rand(1, 4, 4, 8).astype("float32")
    out = block([x, np.zeros((1, 4), "float32")]).numpy()
    assert block.has_identity
    np.testing.assert_allclose(out, x, atol=1e-6)  # all paths off: identity only, linear
    assert block.paths[0][0].name == "path0_depthwise"


def test_static_single_path_is_a_plain_bottleneck():
    block = _block(groups=1, path_width=8, gated=False)
    block.build((None, 8, 8, 32))
    names = [layer.name for layer in block.paths[0]]
    assert names == ["path0_1_conv", "path0_1_bn", "path0_1_relu", "path0_2_conv", "path0_2_bn",
                     "path0_2_relu", "path0_3_conv", "path0_3_bn"]
    assert block.shortcut is None and block.has_identity
    # 1x1 32->8, 3x3 8->8, 1x1 8->32 on 8x8.
    assert block.compute_flops() == {"always_on": 0, "paths": [64 * (32 * 8 + 9 * 64 + 8 * 32)]}


def test_shortcut_rule():
    assert shortcut_kind("bottleneck", 32, 32, 1) == "identity"
    assert shortcut_kind("inverted_residual", 32, 32, 1) == "identity"
    assert shortcut_kind("bottleneck", 16, 32, 1) == "projection"
    assert shortcut_kind("bottleneck", 32, 32, 2) == "projection"
    assert shortcut_kind("inverted_residual", 16, 24, 1) is None
    assert shortcut_kind("inverted_residual", 24, 24, 2) is None
    block = _block(strides=2)
    block.build([(None, 8, 8, 32), (None, 4)])
    assert block.has_shortcut and not block.has_identity and len(block.shortcut) == 2


def test_path_width_rule_keeps_parameters():
    width = bottleneck_path_width(256, 64, 256, 4)
    original = 256 * 64 + 9 * 64 * 64 + 64 * 256
    split = 4 * (256 * width + 9 * width * width + width * 256)
    assert width % 4 == 0 and abs(split / original - 1) < 0.05
    assert bottleneck_path_width(256, 64, 256, 1) == 64


@pytest.mark.parametrize("kwargs, name", [
    ({"kind": "dense"}, "kind"), ({"groups": 0}, "groups"), ({"strides": 3}, "strides"),
    ({"execution": "lazy"}, "execution")])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _block(**kwargs)


def test_groups_must_divide_sliced_channels():
    block = MultiPathBlock("inverted_residual", filters=8, groups=3, path_width=2, expand=False)
    with pytest.raises(ValueError, match="groups"):
        block([np.zeros((1, 4, 4, 8), "float32"), np.ones((1, 3), "float32")])


def test_rejects_wrong_rank():
    with pytest.raises(ValueError, match="4D"):
        _block(gated=False)(np.zeros((2, 8, 16), "float32"))


def test_config_round_trip():
    block = _block(name="b")
    clone = MultiPathBlock.from_config(block.get_config())
    assert clone.get_config() == block.get_config()
