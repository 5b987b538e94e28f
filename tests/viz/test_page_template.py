"""The activation page's template is package data (rnnlab/viz/templates): it loads, it is
declared for a non-editable install, the page it makes is the one the in-module template
made, and its script parses."""

import hashlib
import shutil
import subprocess
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from rnnlab.viz.activations import TEMPLATE_FILES, page_template, render_page

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = resources.files("rnnlab.viz") / "templates"

#: sha256 of render_page(PAGE_DATA) from the template as a string in viz/activations.py
#: (commit cacbbde), before it became package data. A deliberate change of the template
#: changes the page: update the digest with it.
OLD_PAGE_SHA256 = "bbe3ee1ef3beb90279c40eb96b992096f87d9e02f95382b956bd522868d70313"
PAGE_DATA = {"title": "a <b> & __DATA__ \u00e9", "tokens": ["h", "i", "</script>", "\u2028"],
             "values": [[0.5, -1.0, 0.25, 0.0]], "units": 1}


def test_the_page_is_byte_identical_to_the_one_the_old_template_made():
    page = render_page(PAGE_DATA)
    assert hashlib.sha256(page.encode("utf-8")).hexdigest() == OLD_PAGE_SHA256


def test_the_page_inlines_the_style_sheet_and_the_script():
    page = page_template()
    assert page.count("<style>\n") == 1 and page.count("<script>\n") == 1
    assert "activations.css" not in page and "activations.js" not in page
    assert (TEMPLATES / "activations.js").read_text(encoding="utf-8") in page
    assert (TEMPLATES / "activations.css").read_text(encoding="utf-8") in page
    assert page.count("__TITLE__") == 2 and page.count("__DATA__") == 1


def test_every_template_file_is_declared_as_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["rnnlab.viz"]
    folder = ROOT / "src" / "rnnlab" / "viz"
    declared = {p.name for pattern in patterns for p in folder.glob(pattern)}
    assert set(TEMPLATE_FILES) <= declared
    assert {p.name for p in (folder / "templates").iterdir()} == set(TEMPLATE_FILES)


@pytest.mark.skipif(shutil.which("node") is None, reason="node (Node.js) is not installed: "
                    "the page's script is not syntax-checked")
def test_the_script_parses(tmp_path):
    script = tmp_path / "activations.js"
    script.write_text((TEMPLATES / "activations.js").read_text(encoding="utf-8"),
                      encoding="utf-8")
    done = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
