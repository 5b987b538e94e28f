"""The site's Sphinx extension (docs/_ext/rnnlab_site.py) without a build: the source
pages have one anchor per line where course.source_url points, and the gallery finds the
figures course.gallery marked."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import pytest

from rnnlab import course

pytest.importorskip("sphinx", reason="the docs extra (pip install 'rnnlab[docs]')")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_ext"))
import rnnlab_site


def anchors(page: str) -> dict[int, str]:
    """Line number to the line's text, from a source page's HTML."""
    found = {}
    for match in re.finditer(r'<span id="L-(\d+)">(.*?)(?=<span id="L-|</code>)', page,
                             re.DOTALL):
        found[int(match.group(1))] = re.sub(r"<[^>]+>", "", match.group(2))  # still escaped
    return found


def test_every_line_of_every_module_has_its_anchor() -> None:
    modules = rnnlab_site.package_modules()
    assert "rnnlab.course" in {m for m, _, _ in modules}
    for dotted, _rel, text in modules:
        if dotted not in ("rnnlab.course", "rnnlab.nn.cells.lstm", "rnnlab.nn.losses"):
            continue
        lines = text.splitlines()
        found = anchors(rnnlab_site.highlight_source(text, []))
        assert sorted(found) == list(range(1, len(lines) + 1))
        for number in (1, len(lines) // 2, len(lines)):
            assert html.unescape(found[number]).rstrip("\n") == lines[number - 1]


def test_each_marker_links_to_an_anchor_on_its_line() -> None:
    pages = {dotted: text for dotted, _, text in rnnlab_site.package_modules()}
    for marker in course.markers().values():
        url = course.source_url(marker)
        module, line = re.fullmatch(r"\.\./source/(.+)\.html#L-(\d+)", url).groups()
        text = pages[module]
        page = rnnlab_site.highlight_source(text, [int(line)])
        assert f"# eq: {marker.name}" in html.unescape(anchors(page)[int(line)])


def test_the_gallery_reads_what_course_gallery_marked() -> None:
    plt = pytest.importorskip("matplotlib.pyplot")
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    shown = course.gallery(fig, "demo-rise", "It rises.")
    assert rnnlab_site.gallery_mark(shown.png) == {"key": "demo-rise", "caption": "It rises."}
    fig, ax = plt.subplots(figsize=(2, 2))
    import io

    plain = io.BytesIO()
    fig.savefig(plain, format="png")
    plt.close(fig)
    assert rnnlab_site.gallery_mark(plain.getvalue()) is None
    assert rnnlab_site.gallery_mark(b"not a png") is None
