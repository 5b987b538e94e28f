"""Drive a local headless Chromium over the DevTools protocol, for screenshots of the
activation page and for testing it as a person would see it.

No network and no third-party package: Chromium is started with
``--remote-debugging-pipe`` and spoken to through two pipes (file descriptors 3 and 4 of
the browser, NUL-separated JSON messages). Find the browser with :func:`find_chromium`
(``$RNNLAB_CHROMIUM``, ``/usr/bin/chromium``, or ``chromium`` / ``chromium-browser`` /
``google-chrome`` on the ``PATH``; on Debian: ``apt-get install chromium``).

For example::

    with HeadlessChromium() as browser:
        page = browser.open(Path("page.html").resolve().as_uri())
        page.evaluate("document.title")
        page.screenshot("page.png")
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rnnlab.data.safefiles import write_atomic

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome",
              "google-chrome-stable")
#: Flags for a closed network and a throw-away profile (the user-data-dir is added).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio",
         "--hide-scrollbars", "--remote-debugging-pipe")


class BrowserError(RuntimeError):
    """Chromium is missing, failed to start, or a DevTools command failed."""


def find_chromium() -> str | None:
    """Path of a Chromium (or Chrome) executable, or None."""
    env = os.environ.get("RNNLAB_CHROMIUM")
    for candidate in ((env,) if env else ()) + CANDIDATES:
        if os.path.isabs(candidate):
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
        else:
            found = shutil.which(candidate)
            if found:
                return found
    return None


def _high_fd(fd: int) -> int:
    """Move ``fd`` to 10 or above (so putting the pipes on 3 and 4 cannot clash)."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class HeadlessChromium:
    """A headless Chromium process and its DevTools pipe (a context manager)."""

    def __init__(self, executable: str | None = None, *, width: int = 1280, height: int = 900,
                 timeout: float = 30.0) -> None:
        found = executable or find_chromium()
        if found is None:
            raise BrowserError("no Chromium found: install it (Debian: apt-get install "
                               "chromium) or set RNNLAB_CHROMIUM to its path")
        self.executable: str = found
        self.width, self.height, self.timeout = width, height, timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._profile: str | None = None
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self._replies: dict[int, dict[str, Any]] = {}
        self._lock = threading.Condition()
        self._reader: threading.Thread | None = None
        self._closed = False
        self._out: Any = None
        self._in: Any = None
        self.stderr_path: str | None = None

    # ----------------------------------------------------------------- process
    def start(self) -> HeadlessChromium:
        self._profile = tempfile.mkdtemp(prefix="rnnlab-chromium-")
        to_browser_r, to_browser_w = (_high_fd(fd) for fd in os.pipe())
        from_browser_r, from_browser_w = (_high_fd(fd) for fd in os.pipe())
        self.stderr_path = os.path.join(self._profile, "stderr.log")
        args = [self.executable, *FLAGS, f"--user-data-dir={self._profile}",
                f"--window-size={self.width},{self.height}", "about:blank"]
        with open(self.stderr_path, "wb") as err:
            # a tiny Python trampoline puts the pipe ends on descriptors 3 and 4, where
            # --remote-debugging-pipe expects them, then becomes the browser
            trampoline = (f"import os, sys; os.dup2({to_browser_r}, 3); "
                          f"os.dup2({from_browser_w}, 4); os.execv(sys.argv[1], sys.argv[1:])")
            self._proc = subprocess.Popen(
                [sys.executable, "-c", trampoline, *args],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                pass_fds=(to_browser_r, from_browser_w))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._out = os.fdopen(to_browser_w, "wb", buffering=0)
        self._in = os.fdopen(from_browser_r, "rb", buffering=0)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        try:
            self.send("Browser.getVersion")
        except BrowserError:
            self.close()
            raise
        return self

    def _read_loop(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._in.read(65536)
            except (OSError, ValueError):
                chunk = b""
            if not chunk:
                with self._lock:
                    self._closed = True
                    self._lock.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw.decode("utf-8"))
                with self._lock:
                    if "id" in message:
                        self._replies[message["id"]] = message
                    else:
                        self._events.append(message)
                    self._lock.notify_all()

    def close(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                self.send("Browser.close", timeout=5.0)
            except BrowserError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for stream in (self._out, self._in):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None
        self._proc = None

    def __enter__(self) -> HeadlessChromium:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- protocol
    def send(self, method: str, params: dict[str, Any] | None = None, *,
             session: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        """Send one DevTools command and wait for its result."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        try:
            self._out.write(json.dumps(message).encode("utf-8") + b"\0")
        except (OSError, ValueError) as exc:
            raise BrowserError(f"Chromium is not running ({exc}){self._stderr_tail()}") \
                from exc
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._lock:
            while ident not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    why = "closed the pipe" if self._closed else "did not answer in time"
                    raise BrowserError(f"{method}: Chromium {why}{self._stderr_tail()}")
                self._lock.wait(left)
            reply = self._replies.pop(ident)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message', reply['error'])}")
        return reply.get("result", {})

    def wait_event(self, method: str, *, session: str | None = None,
                   timeout: float | None = None) -> dict[str, Any]:
        """Wait for (and consume) the first event ``method`` of ``session``."""
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._lock:
            while True:
                for k, event in enumerate(self._events):
                    if event.get("method") == method and (
                            session is None or event.get("sessionId") == session):
                        return self._events.pop(k).get("params", {})
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise BrowserError(f"no {method} event from Chromium{self._stderr_tail()}")
                self._lock.wait(left)

    def events(self, session: str | None = None) -> list[dict[str, Any]]:
        """Events received so far (of one session when given), not consumed."""
        with self._lock:
            return [e for e in self._events
                    if session is None or e.get("sessionId") == session]

    def _stderr_tail(self) -> str:
        if not self.stderr_path or not os.path.exists(self.stderr_path):
            return ""
        tail = Path(self.stderr_path).read_text(errors="replace").strip().splitlines()[-5:]
        return ("; its last output: " + " | ".join(tail)) if tail else ""

    # -------------------------------------------------------------------- pages
    def open(self, url: str, *, width: int | None = None, height: int | None = None) -> Page:
        """A new tab showing ``url``, after its load event."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width or self.width, "height": height or self.height,
                   "deviceScaleFactor": 1, "mobile": False}, session=session)
        page.navigate(url)
        return page


class Page:
    """One tab: navigate, evaluate JavaScript, send input, take screenshots, read errors."""

    def __init__(self, browser: HeadlessChromium, target: str, session: str) -> None:
        self.browser, self.target, self.session = browser, target, session

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, session=self.session)

    def navigate(self, url: str) -> None:
        reply = self.send("Page.navigate", {"url": url})
        if reply.get("errorText"):
            raise BrowserError(f"cannot open {url}: {reply['errorText']}")
        self.browser.wait_event("Page.loadEventFired", session=self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited if it is a promise)."""
        reply = self.send("Runtime.evaluate", {"expression": expression,
                                               "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript error: {text}")
        return reply.get("result", {}).get("value")

    def press_key(self, key: str, code: int) -> None:
        """Press and release a key (e.g. ``"ArrowRight", 39``) in the page."""
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": key,
                                                 "windowsVirtualKeyCode": code})

    def click(self, x: float, y: float) -> None:
        """A left mouse click at page coordinates."""
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y,
                                                   "button": "left", "clickCount": 1})

    def screenshot(self, path: str | Path, *, full_page: bool = False) -> Path:
        """Write a PNG of the viewport (or the whole page) to ``path``."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"],
                                "height": size["height"], "scale": 1})
        data = self.send("Page.captureScreenshot", params)["data"]
        return write_atomic(path, base64.b64decode(data))

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen so far."""
        out = []
        for event in self.browser.events(self.session):
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                d = params.get("exceptionDetails", {})
                out.append("exception: " + str(d.get("exception", {}).get("description")
                                               or d.get("text")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error",
                                                                                 "assert"):
                out.append("console." + params["type"] + ": " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in params.get("args",
                                                                                       [])))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                out.append(f"log ({entry.get('source')}): {entry.get('text')} "
                           f"{entry.get('url', '')}".strip())
        return out

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})


def screenshot_page(html_path: str | Path, png_path: str | Path, *, width: int = 1280,
                    height: int = 860, unit: int | None = None, underline: str | None = None,
                    executable: str | None = None) -> tuple[Path, list[str]]:
    """Open a local HTML file in headless Chromium, screenshot it; return the PNG path and
    any console errors. ``unit`` and ``underline`` (a property's name) set the activation
    page's controls."""
    from urllib.parse import quote

    params = [] if unit is None else [f"unit={unit}"]
    if underline:
        params.append("underline=" + quote(underline))
    url = Path(html_path).resolve().as_uri() + ("#" + "&".join(params) if params else "")
    with HeadlessChromium(executable, width=width, height=height) as browser:
        page = browser.open(url)
        page.evaluate("new Promise(r => requestAnimationFrame(() => r(true)))")
        path = page.screenshot(png_path)
        return path, page.errors()
