"""The README's Python example runs as written, and its test command matches CI's."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_python_examples_run():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, "README.md", "exec"), namespace)  # our own README


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- test-command -->\n```\n(.*?)\n```\n<!-- /test-command -->", readme)
    assert match, "README.md must hold the test command between test-command markers"
    assert "pytest" in match.group(1)
    assert "test-command" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
