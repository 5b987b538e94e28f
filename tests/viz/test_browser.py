"""The activation page in a real headless Chromium: it loads without console errors, the
controls switch units and change the colours, and a screenshot shows it.

Chromium is found at ``$RNNLAB_CHROMIUM``, ``/usr/bin/chromium``, or as ``chromium`` /
``chromium-browser`` / ``google-chrome`` on the PATH (Debian: ``apt-get install -y
chromium``); without one these tests are skipped, saying so.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.viz.activations import activation_page
from rnnlab.viz.browser import HeadlessChromium, find_chromium
from rnnlab.viz.probe import collect_states

from .conftest import HOSTILE_TITLE, assert_real_png

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium found (looked for $RNNLAB_CHROMIUM, "
    "/usr/bin/chromium, chromium, chromium-browser, google-chrome on PATH); install it "
    "with: apt-get install -y chromium")

COLOURS = "Array.from(document.querySelectorAll('#text span.t')).map(s => " \
          "s.style.backgroundColor)"


@pytest.fixture(scope="module")
def page_file(trained, tmp_path_factory):
    states = collect_states(trained.model, trained.text, vocab=trained.vocab)
    return activation_page(states, tmp_path_factory.mktemp("page") / "activations.html")


@pytest.fixture(scope="module")
def browser():
    with HeadlessChromium(CHROMIUM, width=1280, height=860) as b:
        yield b


def centre(page, selector):
    box = page.evaluate(f"JSON.stringify(document.querySelector({selector!r})"
                        f".getBoundingClientRect())")
    r = json.loads(box)
    return r["x"] + r["width"] / 2, r["y"] + r["height"] / 2


def test_page_loads_and_switching_units_changes_colours(page_file, browser, trained,
                                                        tmp_path):
    page = browser.open(page_file.resolve().as_uri())
    try:
        assert page.evaluate("document.querySelectorAll('#text span.t').length") == \
            len(trained.text)
        H = trained.model.config.hidden_size
        assert page.evaluate("document.getElementById('unit').options.length") == H
        first = page.evaluate("window.rnnlabActivations.unit()")
        before = page.evaluate(COLOURS)
        assert len(set(before)) > 10  # a real range of colours, not one flat tint

        # 1. the unit selector, as a user changes it
        target = page.evaluate("document.getElementById('unit').options[3].value")
        page.evaluate(f"(() => {{ const s = document.getElementById('unit'); "
                      f"s.value = '{target}'; s.dispatchEvent(new Event('change')); }})()")
        assert page.evaluate("window.rnnlabActivations.unit()") == int(target) != first
        after = page.evaluate(COLOURS)
        assert sum(a != b for a, b in zip(before, after, strict=True)) > len(before) // 2
        assert page.evaluate("location.hash") == f"#unit={target}"

        # 2. a real mouse click on the "next" button moves one down the ranking
        x, y = centre(page, "#next")
        page.click(x, y)
        order = page.evaluate("Array.from(document.getElementById('unit').options)"
                              ".map(o => Number(o.value))")
        assert page.evaluate("window.rnnlabActivations.unit()") == order[4]
        assert page.evaluate(COLOURS) != after

        # 3. the arrow keys, and a click in the ranked list
        page.press_key("ArrowLeft", 37)
        assert page.evaluate("window.rnnlabActivations.unit()") == int(target)
        x, y = centre(page, "#rank-body tr:nth-child(2)")
        page.click(x, y)
        assert page.evaluate("window.rnnlabActivations.unit()") == order[1]
        assert page.evaluate("document.querySelector('#rank-body tr.selected')"
                             ".dataset.unit") == str(order[1])

        # 4. underline a property; rank by it
        page.evaluate("(() => { const f = document.getElementById('feature'); "
                      "f.value = 'inside a string'; f.dispatchEvent(new Event('change')); })()")
        marked = page.evaluate("document.querySelectorAll('#text span.mark').length")
        assert 0 < marked < len(trained.text)
        page.evaluate("(() => { const r = document.getElementById('rankby'); "
                      "r.value = r.options[1].value; r.dispatchEvent(new Event('change')); })()")
        ranked = page.evaluate("Array.from(document.querySelectorAll('#rank-body td.r'))"
                               ".map(td => Math.abs(parseFloat(td.textContent.replace("
                               "'\u2212', '-'))))")
        assert len(ranked) == H and ranked == sorted(ranked, reverse=True)

        # 5. hovering a character shows its value
        x, y = centre(page, "#text span.t:nth-child(5)")
        browser.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y},
                     session=page.session)
        assert "token" in page.evaluate("document.getElementById('info').textContent")

        shot = page.screenshot(tmp_path / "activations.png")
        pixels = assert_real_png(shot, min_bytes=20_000)
        assert pixels.shape[:2] == (860, 1280)
        # red and blue text backgrounds are both on screen
        rgb = (pixels[..., :3] * 255).astype(int)
        reddish = ((rgb[..., 0] > 180) & (rgb[..., 2] < 150)).sum()
        bluish = ((rgb[..., 2] > 150) & (rgb[..., 0] < 120)).sum()
        assert reddish > 200 and bluish > 200
        assert page.errors() == []
    finally:
        page.close()


def test_page_opens_at_the_unit_in_the_address(page_file, browser):
    page = browser.open(page_file.resolve().as_uri() + "#unit=7&underline=inside%20brackets")
    try:
        assert page.evaluate("window.rnnlabActivations.unit()") == 7
        assert page.evaluate("document.getElementById('unit').value") == "7"
        assert page.evaluate("document.getElementById('feature').value") == "inside brackets"
        assert page.evaluate("document.querySelectorAll('#text span.mark').length") > 0
        assert page.evaluate("location.hash") == "#unit=7&underline=inside%20brackets"
        assert page.errors() == []
    finally:
        page.close()


def test_errors_in_a_page_are_reported(browser, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><title>x</title><script>console.error('boom');"
                   "undefinedFunction();</script>", encoding="utf-8")
    page = browser.open(bad.resolve().as_uri())
    try:
        page.evaluate("1")
        errors = page.errors()
        assert any("boom" in e for e in errors)
        assert any("undefinedFunction" in e for e in errors)
    finally:
        page.close()


def test_cli_screenshot(trained, tmp_path, capsys):
    out = tmp_path / "a.html"
    shot = tmp_path / "a.png"
    assert main(["plot", "activations", str(trained.run / "last.safetensors"), "--string",
                 trained.text, "--out", str(out), "--screenshot", str(shot), "--unit",
                 "2", "--underline", "inside a comment"]) == 0
    assert capsys.readouterr().out.split() == ["wrote", str(out), "wrote", str(shot)]
    pixels = assert_real_png(shot, min_bytes=20_000)
    assert np.asarray(pixels).shape[1] == 1280


def test_hostile_tokens_and_title_stay_text(hostile_states, browser, tmp_path):
    """Tokens and a title holding ``</script>``, ``<!--``, ``__DATA__``, U+2028 and a tag
    with an ``onerror`` handler: the page runs (no blank page, no JSON error), shows each
    of them as text, and runs none of them (issue 26, item 8)."""
    path = activation_page(hostile_states, tmp_path / "hostile.html", title=HOSTILE_TITLE)
    page = browser.open(path.resolve().as_uri())
    try:
        page.evaluate("new Promise(r => requestAnimationFrame(() => r(true)))")
        assert page.errors() == []
        assert page.evaluate("document.getElementById('title').textContent") == HOSTILE_TITLE
        assert page.evaluate("document.title") == HOSTILE_TITLE
        assert page.evaluate("document.querySelectorAll('h1 *, title *, img').length") == 0
        assert page.evaluate("typeof window.pwned") == "undefined"
        shown = page.evaluate("Array.from(document.querySelectorAll('#text span.t'))"
                              ".map(s => s.textContent)")
        words = list(hostile_states.tokens)
        assert len(shown) == len(words) == page.evaluate("window.rnnlabActivations.tokens")
        assert [w for w, t in zip(shown, words, strict=True) if t != "<eos>"] == \
            [t for t in words if t != "<eos>"]
        assert page.evaluate("document.getElementById('unit').options.length") == 16
    finally:
        page.close()
