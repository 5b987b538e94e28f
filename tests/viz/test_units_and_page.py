"""Nameable text features, the unit ranking, and the activation page's HTML (NumPy only)."""

from __future__ import annotations

import base64
import html
import json
import re

import numpy as np
import pytest

from rnnlab.viz.activations import activation_page, page_data, render_page
from rnnlab.viz.probe import collect_states
from rnnlab.viz.tokens import display_token
from rnnlab.viz.units import (
    Feature,
    char_features,
    correlations,
    rank_units,
    text_features,
    word_features,
)

from .conftest import HOSTILE_TITLE

DATA_BLOCK = re.compile(r'<script id="data" type="application/json">(.*?)</script>', re.S)


def feature(features, name):
    return next(f for f in features if f.name == name).values


def bits(values):
    return "".join(str(int(v)) for v in values)


def test_char_features_follow_strings_comments_and_brackets():
    text = 'x = f("a(b", \'c\') # it\'s "q"\n    """doc\nstring""" don\'t\n'
    fs = char_features(list(text))
    # x = f("a(b", 'c') # it's "q"N    """docNstring""" don'tN   (N: newline)
    assert bits(feature(fs, "inside a string")) == \
        "00000011111001110000000000000000011111111111111110000000"
    assert bits(feature(fs, "inside triple quotes")) == \
        "00000000000000000000000000000000011111111111111110000000"
    assert bits(feature(fs, "inside a comment")) == \
        "00000000000000000011111111111000000000000000000000000000"
    assert bits(feature(fs, "inside brackets")) == \
        "00000111111111110000000000000000000000000000000000000000"
    assert bits(feature(fs, "indentation")) == \
        "00000000000000000000000000000111100000000000000000000000"
    starts = np.flatnonzero(feature(fs, "line start"))
    assert starts.tolist() == [0, 29, 40]
    assert feature(fs, "position in line")[27] == 27


def test_word_features():
    tokens = "the ( N cats ) said `` hi '' <eos> he 's <unk>".split()
    fs = word_features(tokens)
    assert bits(feature(fs, "inside brackets")) == "0111100000000"
    assert bits(feature(fs, "inside quotes")) == "0000001110000"
    assert bits(feature(fs, "number")) == "0010000000000"
    assert bits(feature(fs, "line start")) == "1000000000100"
    assert bits(feature(fs, "possessive / clitic")) == "0000000000010"


def test_text_features_drop_constant_and_duplicate_features():
    fs = text_features(list('a "b" c\n'), "char")
    names = [f.name for f in fs]
    assert "inside a string" in names
    assert "inside double quotes" not in names  # same values as "inside a string" here
    assert "inside a comment" not in names  # constant
    assert "digit" not in names


def test_rank_units_finds_a_planted_detector():
    rng = np.random.default_rng(0)
    text = list('print("hi there") # done\nx = [1, 2]\n' * 5)
    fs = text_features(text, "char")
    acts = rng.normal(0, 0.3, size=(len(text), 6))
    strings = feature(fs, "inside a string")
    brackets = feature(fs, "inside brackets")
    acts[:, 4] += 2.0 * strings
    acts[:, 1] -= 2.0 * feature(fs, "inside a comment")
    acts[:, 2] = 0.0  # a dead unit
    ranking = rank_units(acts, fs)
    top = {s.unit: s for s in ranking[:2]}
    assert top[4].feature == "inside a string" and top[4].r > 0.8
    assert top[1].feature == "inside a comment" and top[1].r < -0.8
    assert ranking[-1].unit == 2 and ranking[-1].r == 0.0
    r = correlations(acts, [Feature("b", "", brackets)])
    assert r.shape == (6, 1) and np.all(np.abs(r) <= 1)


def test_page_data_and_html_are_self_contained(trained, tmp_path):
    text = trained.text + 'x = "</script><b>" # <!-- \u2028\n'
    states = collect_states(trained.model, text, vocab=trained.vocab)
    data = page_data(states)
    H = trained.model.config.hidden_size
    assert data["kind"] == "c" and data["units"] == H and data["T"] == len(text)
    acts = np.frombuffer(base64.b64decode(data["acts"]), dtype=np.int8).reshape(H, -1)
    expected = states.states(-1, "c")
    scale = np.asarray(data["scale"])
    np.testing.assert_allclose(acts.T / 127 * scale, expected, atol=scale.max() / 127)
    assert sorted(r[0] for r in data["ranking"]) == list(range(H))
    assert len(data["corr"]) == H and len(data["corr"][0]) == len(data["features"])
    names = [f["name"] for f in data["features"]]
    assert "inside a string" in names and "inside brackets" in names

    path = activation_page(states, tmp_path / "page.html", max_tokens=200)
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # nothing is fetched: no external scripts, styles, images or fonts
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page and "url(" not in page
    # the embedded JSON survives "</script>" in the text and parses back
    blob = re.search(r'<script id="data" type="application/json">(.*?)</script>', page,
                     re.S).group(1)
    parsed = json.loads(blob)
    assert parsed["T"] == 200
    full = render_page(data)
    assert full.count("</script>") == 2  # the data block and the code, nothing from the text
    assert json.loads(re.search(r'application/json">(.*?)</script>', full,
                                re.S).group(1))["tokens"][-10:] == data["tokens"][-10:]


def test_page_data_h_state_is_on_a_shared_scale(trained):
    states = collect_states(trained.model, trained.text[:100], vocab=trained.vocab)
    data = page_data(states, kind="h")
    assert data["bounded"] and set(data["scale"]) == {1.0}
    with pytest.raises(ValueError, match="kind"):
        page_data(states, kind="z")


def test_public_api_resolves_lazily():
    import rnnlab.viz as viz

    for name in viz.__all__:
        assert getattr(viz, name) is not None, name
    assert "plot_hidden_states" in dir(viz)
    with pytest.raises(AttributeError, match="no attribute"):
        viz.not_a_function  # noqa: B018


def test_find_chromium_and_a_clear_error_without_one(monkeypatch, tmp_path):
    from rnnlab.viz import browser

    monkeypatch.setattr(browser, "CANDIDATES", (str(tmp_path / "no-chromium"),
                                                "no-such-browser-xyz"))
    monkeypatch.delenv("RNNLAB_CHROMIUM", raising=False)
    assert browser.find_chromium() is None
    with pytest.raises(browser.BrowserError, match="apt-get install chromium"):
        browser.HeadlessChromium()
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("RNNLAB_CHROMIUM", str(fake))
    assert browser.find_chromium() == str(fake)


def test_tokens_outside_the_vocabulary_are_no_quote_or_bracket():
    """``<unk>`` (and any token longer than one character) is no character at all: it
    neither opens a string nor a bracket, and is not punctuation (issue 26, item 7)."""
    tokens = ["<unk>", " ", "=", " ", "(", "<unk>", ")", "<unk>", "'", "a", "'"]
    fs = char_features(tokens)
    assert bits(feature(fs, "inside a string")) == "00000000111"
    assert bits(feature(fs, "inside brackets")) == "00001100000"
    assert bits(feature(fs, "punctuation")) == "00101010101"
    assert feature(fs, "position in line").tolist() == list(range(11))
    assert bits(feature(char_features(["<unk>"] * 3), "inside a string")) == "000"


def test_page_with_hostile_tokens_and_title_keeps_its_structure(hostile_states):
    """``</script>``, ``<!--``, the template's placeholders and U+2028 in the tokens and
    the title: the JSON block is valid JSON as it stands (nothing to un-escape), the
    title is text in ``<title>`` and ``<h1>``, and nothing else ends a script or opens a
    comment (issue 26, item 8)."""
    data = page_data(hostile_states, title=HOSTILE_TITLE)
    page = render_page(data)
    assert page.lower().count("</script") == 2  # the data block's end and the code's end
    assert "<!--" not in page
    blobs = DATA_BLOCK.findall(page)
    assert len(blobs) == 1
    blob = blobs[0]
    assert not set(blob) & set("<>&\u2028\u2029")
    parsed = json.loads(blob)
    assert parsed == data
    assert parsed["title"] == HOSTILE_TITLE
    words = [display_token(t, "word") for t in hostile_states.tokens]
    assert parsed["tokens"] == words and "</script>" in words and "<!--" in words
    for tag in ("title", 'h1 id="title"'):
        inner = re.search(f"<{tag}>(.*?)</{tag.split()[0]}>", page, re.S).group(1)
        assert html.unescape(inner) == HOSTILE_TITLE
        assert "<" not in inner and '"' not in inner


def test_page_title_must_be_text(hostile_states):
    with pytest.raises(TypeError, match="title expected a str or None, got int"):
        page_data(hostile_states, title=3)


def test_page_takes_numpy_integers_and_names_bad_ones(hostile_states):
    """NumPy integers work wherever ints do, and the data stays JSON (issue 26, item 11)."""
    plain = page_data(hostile_states, layer=-1, max_tokens=20)
    numpy_ = page_data(hostile_states, layer=np.int64(-1), max_tokens=np.int32(20))
    assert json.dumps(numpy_) == json.dumps(plain) and numpy_["T"] == 20
    with pytest.raises(TypeError, match="layer expected an int, got float"):
        page_data(hostile_states, layer=0.0)
    with pytest.raises(TypeError, match="max_tokens expected an int or None, got bool"):
        page_data(hostile_states, max_tokens=True)
    with pytest.raises(ValueError, match="max_tokens expected an int >= 1 or None, got 0"):
        page_data(hostile_states, max_tokens=np.int64(0))
