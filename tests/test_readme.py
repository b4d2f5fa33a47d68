"""The README's Python snippets run (on a few batches, one epoch)."""

import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


@pytest.mark.skipif(not os.environ.get("TFDS_DATA_DIR"), reason="needs CIFAR-10 in TFDS_DATA_DIR")
def test_quickstart_and_export_snippets_run(tmp_path, monkeypatch):
    quickstart, export = re.findall(r"```python\n(.*?)```", open(README).read(), re.S)[:2]
    shrink = {"epochs=5": "epochs=1", "training=True)": "training=True).take(2)",
              "training=False)": "training=False).take(1)", "test.take(2)": "test.take(1)"}
    code = quickstart + "\n" + export
    for old, new in shrink.items():
        assert old in code, old
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, README, "exec"), namespace)
    for name in ("dmnn.tflite", "dmnn_int8.tflite", "static.tflite", "dmnn_saved_model"):
        assert (tmp_path / name).exists(), name
    assert 0 < namespace["dk"].profile(namespace["small"])["flops"]
