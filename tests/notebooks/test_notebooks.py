"""Executes every Colab notebook of colab/ top to bottom, small-sized.

Each notebook runs in a fresh `python3` kernel (ipykernel, from the dev extra)
with `DMNN_NOTEBOOK_SMALL=1`, its working directory a temporary folder (the
notebooks write their figures and .tflite files there) and the test
process's environment, so TFDS_DATA_DIR (CIFAR-10) passes through.

CIFAR-100 cannot be downloaded here: for category_supervision.ipynb the test
puts one cell in front of the notebook that enters `tfds.testing.mock_data`
for the whole kernel session, so `tfds.load("cifar100")` yields fabricated
examples with the real features (including `coarse_label`). The notebook
itself has no test-only code.

After the last cell the test runs a cell of its own that prints the
notebook's `results` as JSON, and checks them.
"""

import json
import os
import re

import pytest

pytestmark = pytest.mark.slow  # 40 s or more per file: run first (tests/conftest.py)

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

COLAB = os.path.join(os.path.dirname(__file__), "..", "..", "colab")
CELL_TIMEOUT = 300  # seconds, per cell
SMALL_VAR = "DMNN_NOTEBOOK_SMALL"
BADGE_URL = "https://colab.research.google.com/github/dmnn-keras/dmnn_keras/blob/main/colab/{}.ipynb"

MOCK_CIFAR100 = """
import tensorflow_datasets as tfds
_mock_data = tfds.testing.mock_data(num_examples=64)
_mock_data.__enter__()  # fabricated TFDS examples for this whole kernel session
"""

DUMP_RESULTS = """
import json
print("RESULTS_JSON=" + json.dumps(results, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
"""


def read(name):
    return nbformat.read(os.path.join(COLAB, f"{name}.ipynb"), as_version=4)


def execute(name, tmp_path, monkeypatch, first_cell=None):
    """Runs the notebook; returns (executed notebook, its `results`)."""
    notebook = read(name)
    if first_cell:
        notebook.cells.insert(0, nbformat.v4.new_code_cell(first_cell))
    notebook.cells.append(nbformat.v4.new_code_cell(DUMP_RESULTS))
    monkeypatch.setenv(SMALL_VAR, "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    text = "".join(output.get("text", "") for output in notebook.cells[-1].outputs)
    match = re.search(r"RESULTS_JSON=(.*)", text)
    assert match, text
    return notebook, json.loads(match.group(1))


def outputs_of(notebook, kind):
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
            if o.output_type in ("display_data", "execute_result") and kind in o.get("data", {})]


@pytest.mark.parametrize("name", ["quickstart", "category_supervision", "tflite_android"])
def test_committed_without_outputs_with_badge_install_and_switch(name):
    notebook = read(name)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert BADGE_URL.format(name) in notebook.cells[0].source
    install = code[0].source
    assert "import dmnn_keras" in install and "except ImportError" in install
    assert '%pip install -q "dmnn_keras[export] @ git+https://github.com/dmnn-keras/dmnn_keras"' in install
    assert f'os.environ.get("{SMALL_VAR}"' in code[1].source


def test_quickstart(tmp_path, monkeypatch):
    notebook, results = execute("quickstart", tmp_path, monkeypatch)
    dmnn, static = results["DMNN ResNet (flops_target=0.5)"], results["static ResNet"]
    # The DMNN twin has more MACs when every sub-block is on (controllers, grouped widths
    # keep the parameters) and never executes more than that.
    assert 0 < dmnn["MACs executed, mean (M)"] <= dmnn["MACs, all on (M)"]
    assert static["MACs executed, mean (M)"] == static["MACs, all on (M)"]
    assert static["executed / static"] == 1.0
    for row in (dmnn, static):
        assert 0.0 <= row["test accuracy"] <= 1.0
    # The shipped preset is trained (81% on the 10,000 test images) at 0.6x the twin's MACs.
    preset = results["preset dmnn_resnet_cifar10"]
    assert preset["test accuracy"] > 0.7 and preset["training time (s)"] == "preset"
    assert 0.5 < preset["executed / static"] < 0.7
    # The early-exit preset (83% on the first 1,000 test images, card) at 0.6x the twin's MACs.
    exits = results["preset exits_resnet_cifar10"]
    assert exits["test accuracy"] > 0.7 and 0.5 < exits["executed / static"] < 0.7
    # Fine-tuned on 2 classes from from_preset(num_classes=2), its threshold calibrated.
    tuned = results["exits preset fine-tuned: vehicles vs animals"]
    assert 0.0 <= tuned["test accuracy"] <= 1.0 and 0.0 < tuned["executed / full"] <= 1.0
    for figure in ("flops_histogram.png", "execution_heatmap.png", "flops_extremes.png"):
        assert (tmp_path / figure).stat().st_size > 1000
    assert len(outputs_of(notebook, "image/png")) == 3
    assert outputs_of(notebook, "text/markdown")  # the comparison table


def test_category_supervision(tmp_path, monkeypatch):
    notebook, results = execute("category_supervision", tmp_path, monkeypatch, MOCK_CIFAR100)
    assert len(results) == 4
    flags = {(row["previous state"], row["category supervision"]) for row in results.values()}
    assert flags == {(True, True), (True, False), (False, True), (False, False)}
    by_flags = {(r["previous state"], r["category supervision"]): r for r in results.values()}
    # The previous state adds the controllers' state_dense; category heads are not counted.
    assert by_flags[(True, True)]["controller params"] == by_flags[(True, False)]["controller params"]
    assert by_flags[(True, True)]["controller params"] > by_flags[(False, True)]["controller params"]
    for row in results.values():
        assert 0.0 < row["executed MACs ratio"] <= 1.0
        assert row["gate specialisation"] >= 0.0
    assert (tmp_path / "category_heatmap.png").stat().st_size > 1000
    assert len(outputs_of(notebook, "image/png")) == 1


def test_tflite_android(tmp_path, monkeypatch):
    notebook, results = execute("tflite_android", tmp_path, monkeypatch)
    float_parity = results["parity"]["DMNN dynamic float32"]
    assert float_parity["gates equal to Keras"] == 1.0
    assert float_parity["executed MACs, max rel. error"] <= 1e-6
    assert float_parity["max abs. logit difference"] < 1e-3
    int8_parity = results["parity"]["DMNN dynamic int8"]
    assert int8_parity["gates equal to Keras"] >= 0.8
    assert int8_parity["top-1 equal to Keras"] >= 0.5
    for row in results["latency"].values():
        assert row["median ms / image"] > 0
    int8_size = results["latency"]["DMNN dynamic int8"]["size (MB)"]
    assert int8_size < 0.5 * results["latency"]["DMNN dynamic float32"]["size (MB)"]
    assert (tmp_path / "dmnn_dynamic_float32.tflite").exists()

    # The Kotlin cell (not executed) uses the names and shapes of the exported signature.
    signature = results["signature"]
    kotlin = next(c.source for c in notebook.cells if c.cell_type == "markdown" and "```kotlin" in c.source)
    assert list(signature["inputs"]) == ["images"]
    assert signature["inputs"]["images"] == [[1, 32, 32, 3], "float32"]
    assert set(signature["outputs"]) == {"logits", "executed_flops", "gates"}
    assert f'mapOf("images" to images)' in kotlin
    for output in signature["outputs"]:
        assert f'"{output}" to ' in kotlin
    assert '"serving_default"' in kotlin and "setUseXNNPACK(true)" in kotlin
    assert f"FloatArray({signature['outputs']['logits'][0][1]})" in kotlin
    assert f"FloatArray({signature['outputs']['gates'][0][1]})" in kotlin
    assert "4 * 32 * 32 * 3" in kotlin
