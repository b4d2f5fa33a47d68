"""benchmarks/report.write_section: a measured section names its machine; a rewrite does not."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # noqa: E402


def test_a_rewrite_names_no_machine_and_replaces_only_its_section(tmp_path, monkeypatch):
    path = tmp_path / "BENCHMARKS.md"
    monkeypatch.setattr(report, "BENCHMARKS_MD", str(path))
    report.write_section("A", "first body", command="python a.py")
    report.write_section("B", "other", command="python b.py")
    text = path.read_text()
    assert f"- Machine: {report.machine_description()}\n" in text and "first body" in text
    report.write_section("A", "second body", command="python a.py", measured=False)
    text = path.read_text()
    assert "first body" not in text and "second body" in text and "other" in text
    section_a = text[text.index("<!-- begin A -->"):text.index("<!-- end A -->")]
    assert "- Machine: none: rewritten from the stored results\n" in section_a
    assert report.machine_description() in text[text.index("<!-- begin B -->"):]
