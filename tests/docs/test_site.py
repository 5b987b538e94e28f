"""The built documentation site, read as files and looked at in headless Chromium with
the network off.

Build the site first, then point ``RNNLAB_SITE`` at it::

    RNNLAB_TUTORIAL=quick sphinx-build -W --keep-going -b html docs docs/_build/html
    RNNLAB_SITE=docs/_build/html python -m pytest tests/docs/test_site.py

Without ``RNNLAB_SITE`` (or with no built site there) every test skips, saying so; the
browser tests also skip without Chromium (Debian: ``apt-get install -y chromium``).
``RNNLAB_SITE_SHOTS`` names a folder to keep the screenshots in.
"""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

from rnnlab.viz.browser import HeadlessChromium, find_chromium

SITE = Path(os.environ["RNNLAB_SITE"]).resolve() if os.environ.get("RNNLAB_SITE") else None
pytestmark = pytest.mark.skipif(
    SITE is None or not (SITE / "index.html").is_file(),
    reason="no built site: build it with `sphinx-build -W --keep-going -b html docs "
           "docs/_build/html` and set RNNLAB_SITE=docs/_build/html")
CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium found (looked for $RNNLAB_CHROMIUM, "
    "/usr/bin/chromium, chromium, chromium-browser, google-chrome on PATH); install it "
    "with: apt-get install -y chromium")
REMOTE = re.compile(r"^(https?:)?//", re.IGNORECASE)
WIDTH, HEIGHT = 1280, 900


# ------------------------------------------------------------------ the files
class Tags(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def tags_of(page: Path) -> list[tuple[str, dict[str, str]]]:
    parser = Tags()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.tags


def pages() -> list[Path]:
    assert SITE is not None
    static = SITE / "_static"
    return sorted(p for p in SITE.rglob("*.html") if static not in p.parents)


def tutorial_pages() -> list[Path]:
    assert SITE is not None
    return sorted((SITE / "tutorials").glob("*.html"))


def target_of(page: Path, href: str) -> tuple[Path, str]:
    parts = urlsplit(href)
    return (page.parent / unquote(parts.path)).resolve(), parts.fragment


def test_no_script_style_or_font_from_the_network() -> None:
    remote = []
    for page in pages():
        for tag, attrs in tags_of(page):
            if tag == "script" and REMOTE.match(attrs.get("src", "")):
                remote.append(f"{page.name}: <script src={attrs['src']}>")
            if tag == "link" and REMOTE.match(attrs.get("href", "")) and (
                    set(attrs.get("rel", "").split()) & {"stylesheet", "preload", "prefetch",
                                                         "preconnect", "icon", "modulepreload"}):
                remote.append(f"{page.name}: <link rel={attrs['rel']} href={attrs['href']}>")
            if tag in ("img", "iframe", "source", "video", "audio") and REMOTE.match(
                    attrs.get("src", "")):
                remote.append(f"{page.name}: <{tag} src={attrs['src']}>")
    assert SITE is not None
    for sheet in SITE.joinpath("_static").rglob("*.css"):
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", sheet.read_text(errors="replace")):
            if REMOTE.match(url):
                remote.append(f"{sheet.relative_to(SITE)}: url({url})")
        if re.search(r"@import\s+(url\()?['\"]?(https?:)?//", sheet.read_text(errors="replace")):
            remote.append(f"{sheet.relative_to(SITE)}: @import from the network")
    assert not remote, "assets from the network:\n" + "\n".join(remote)


def test_mathjax_is_served_by_the_site() -> None:
    assert SITE is not None
    assert (SITE / "_static" / "mathjax" / "tex-svg.js").is_file()
    with_math = [p for p in pages() if 'class="math' in p.read_text(encoding="utf-8")]
    assert with_math, "no page holds a formula"
    for page in with_math:
        scripts = [a.get("src", "") for t, a in tags_of(page) if t == "script"]
        assert any("_static/mathjax/tex-svg.js" in s for s in scripts), (page.name, scripts)


def test_equation_links_resolve_to_their_marked_lines() -> None:
    links = [(page, attrs["href"]) for page in tutorial_pages()
             for tag, attrs in tags_of(page)
             if tag == "a" and "rnnlab-source-link" in attrs.get("class", "").split()]
    if not links:
        pytest.skip("no tutorial in the built site shows an equation")
    for page, href in links:
        target, fragment = target_of(page, href)
        assert target.is_file(), f"{page.name}: {href} has no page"
        match = re.fullmatch(r"L-(\d+)", fragment)
        assert match, f"{page.name}: {href} is not a line anchor"
        text = target.read_text(encoding="utf-8")
        start = text.find(f'<span id="{fragment}">')
        assert start >= 0, f"{page.name}: {href}: no anchor {fragment} in {target.name}"
        line = re.sub(r"<[^>]+>", "", text[start: text.find("\n", start)])
        assert "# eq:" in line, f"{page.name}: {href} points at a line with no marker: {line}"


def test_every_local_link_and_image_exists() -> None:
    missing = []
    for page in pages():
        for tag, attrs in tags_of(page):
            ref = attrs.get("href") if tag in ("a", "link") else attrs.get("src") \
                if tag in ("img", "script") else None
            if not ref or ref.startswith(("#", "mailto:", "data:", "javascript:")) \
                    or REMOTE.match(ref) or ":" in urlsplit(ref).scheme:
                continue
            target, _ = target_of(page, ref)
            if not target.exists():
                missing.append(f"{page.relative_to(SITE)}: {ref}")
    assert not missing, "links to nothing:\n" + "\n".join(missing[:40])


def test_api_reference_links_its_source() -> None:
    assert SITE is not None
    page = SITE / "api" / "nn.html"
    tags = tags_of(page)
    assert any(t == "dl" and "class" in a.get("class", "") for t, a in tags)
    sources = [a["href"] for t, a in tags if t == "a" and "_modules/" in a.get("href", "")]
    assert sources, "no [source] links in the API reference"
    for href in sources:
        assert target_of(page, href)[0].is_file(), href


# ------------------------------------------------------------------ in the browser
@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium")
    with HeadlessChromium(CHROMIUM, width=WIDTH, height=HEIGHT, timeout=60) as b:
        yield b


WAIT_FOR_MATHJAX = """new Promise((done) => {
  const t0 = Date.now();
  const go = () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      MathJax.startup.promise.then(() => done(true), () => done(false));
    } else if (!document.querySelector('.math')) {
      done(false);
    } else if (Date.now() - t0 > 30000) {
      done(false);
    } else { setTimeout(go, 50); }
  };
  go();
})"""

VISIBLE_TEXT = """(() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('script, style, pre, code, .highlight, .MathJax_Preview, '
                        + 'textarea').forEach(e => e.remove());
  return body.textContent;
})()"""

IMAGES = """Array.from(document.images).map(i => ({src: i.getAttribute('src'),
  ok: i.complete && i.naturalWidth > 0}))"""


class OfflinePage:
    """A tab with the network off that records every request it tries."""

    def __init__(self, browser: HeadlessChromium, path: Path) -> None:
        self.browser = browser
        self.page = browser.open("about:blank")
        self.page.send("Network.enable")
        self.page.send("Network.emulateNetworkConditions",
                       {"offline": True, "latency": 0, "downloadThroughput": -1,
                        "uploadThroughput": -1})
        self.page.navigate(path.resolve().as_uri())
        self.page.evaluate("document.fonts.ready.then(() => true)")

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.browser.events(self.page.session)
                if e.get("method") == "Network.requestWillBeSent"]

    def assert_sound(self) -> None:
        remote = [u for u in self.requests() if REMOTE.match(u)]
        assert not remote, f"requests to the network: {remote}"
        broken = [i["src"] for i in self.page.evaluate(IMAGES) if not i["ok"]]
        assert not broken, f"images that did not load: {broken}"
        assert self.page.errors() == []


def typeset(page: OfflinePage) -> tuple[int, int]:
    """(formulas, formulas MathJax has rendered) once MathJax has finished."""
    page.page.evaluate(WAIT_FOR_MATHJAX)
    return tuple(page.page.evaluate("""(() => {
      const math = Array.from(document.querySelectorAll('.math.notranslate'));
      const done = math.filter(e => e.querySelector('mjx-container svg'));
      return [math.length, done.length];
    })()"""))


def assert_no_raw_tex(page: OfflinePage) -> None:
    text = page.page.evaluate(VISIBLE_TEXT)
    for raw in ("$$", "\\frac", "\\(", "\\[", "\\begin{"):
        assert raw not in text, f"raw {raw!r} left in the rendered text: " \
            f"...{text[max(0, text.find(raw) - 80): text.find(raw) + 80]}..."


def shots_dir(tmp_path: Path) -> Path:
    where = os.environ.get("RNNLAB_SITE_SHOTS")
    folder = Path(where) if where else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def png_pixels(path: Path) -> np.ndarray:
    from PIL import Image  # matplotlib's own dependency (test extra)

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


@needs_chromium
def test_landing_page_renders(browser, tmp_path) -> None:
    assert SITE is not None
    page = OfflinePage(browser, SITE / "index.html")
    try:
        assert page.page.evaluate("document.querySelector('h1').textContent").startswith(
            "rnnlab")
        links = page.page.evaluate("Array.from(document.querySelectorAll('a'))"
                                   ".map(a => a.getAttribute('href'))")
        assert "course.html" in links and "glossary.html" in links
        page.assert_sound()
    finally:
        page.page.close()


def chosen_tutorial() -> Path:
    found = tutorial_pages()
    if not found:
        pytest.skip("no tutorial page in the built site")
    with_math = [p for p in found if 'class="math' in p.read_text(encoding="utf-8")]
    return (with_math or found)[0]


@needs_chromium
def test_tutorial_renders_typeset_with_figures(browser, tmp_path) -> None:
    path = chosen_tutorial()
    page = OfflinePage(browser, path)
    try:
        n_math, n_jax = typeset(page)
        if n_math:
            assert n_jax >= n_math, f"{path.name}: {n_math} formulas, {n_jax} typeset"
        assert_no_raw_tex(page)
        page.assert_sound()
        shot = page.page.screenshot(shots_dir(tmp_path) / f"{path.stem}.png")
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
        pixels = png_pixels(shot)
        assert pixels.shape[:2] == (HEIGHT, WIDTH)
        assert pixels.std() > 0.05, "the screenshot is nearly blank"
        colours = np.unique((pixels.reshape(-1, 3) * 255).astype(np.int64) @ [65536, 256, 1])
        assert colours.size > 64
        page.page.screenshot(shots_dir(tmp_path) / f"{path.stem}-full.png", full_page=True)
    finally:
        page.page.close()


@needs_chromium
def test_api_page_renders(browser) -> None:
    assert SITE is not None
    page = OfflinePage(browser, SITE / "api" / "nn.html")
    try:
        n_classes = page.page.evaluate("document.querySelectorAll('dl.py.class').length")
        assert n_classes >= 5
        typeset(page)
        assert_no_raw_tex(page)
        page.assert_sound()
    finally:
        page.page.close()


@needs_chromium
def test_gallery_and_an_equation_source_line(browser, tmp_path) -> None:
    assert SITE is not None
    page = OfflinePage(browser, SITE / "gallery.html")
    try:
        page.assert_sound()
        n = page.page.evaluate("document.querySelectorAll('figure.rnnlab-gallery img')"
                               ".length")
        if tutorial_pages():
            assert n > 0, "the tutorials were built but the gallery is empty"
        page.page.screenshot(shots_dir(tmp_path) / "gallery.png", full_page=True)
    finally:
        page.page.close()
    links = [(p, a["href"]) for p in tutorial_pages() for t, a in tags_of(p)
             if t == "a" and "rnnlab-source-link" in a.get("class", "")]
    if not links:
        return
    target, fragment = target_of(*links[0])
    page = OfflinePage(browser, target)
    try:
        page.page.evaluate(f"(location.hash = {json.dumps('#' + fragment)}, true)")
        line = page.page.evaluate("document.querySelector(':target').textContent")
        assert "# eq:" in line
        page.assert_sound()
        page.page.screenshot(shots_dir(tmp_path) / "source-line.png")
    finally:
        page.page.close()
