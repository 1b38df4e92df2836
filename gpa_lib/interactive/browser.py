"""Headless Chromium through the DevTools protocol over a pipe: no websocket, no extra package.

``chromium --remote-debugging-pipe`` reads protocol messages (JSON, each ended by a NUL byte) on
file descriptor 3 and writes replies and events on descriptor 4. :class:`Browser` starts it with two
pipes in those places, and offers the few calls the browser test needs: open a page and wait for its
load, evaluate JavaScript, collect console errors and uncaught exceptions, take a screenshot.

    with Browser() as browser:
        page = browser.open(Path("_build/html-smoke/notebooks/01_gpa_complexity.html"))
        browser.wait_for("document.querySelector('.gpa-interactive[data-gpa-ready]') !== null")
        browser.screenshot(Path("shot.png"))
        assert not page.errors
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Where Debian's package puts it first; then whatever PATH finds.
CANDIDATES = (
    "/usr/bin/chromium",
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--allow-file-access-from-files",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    """The path of a Chromium executable, or None (``GPA_CHROMIUM`` overrides the search)."""
    override = os.environ.get("GPA_CHROMIUM")
    if override:
        return override if Path(override).is_file() else shutil.which(override)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(RuntimeError):
    """The browser died, timed out, or answered a command with an error."""


@dataclass
class Page:
    """What a page said while it ran: console errors and uncaught exceptions, one line each."""

    url: str
    errors: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # every console message, any level


class Browser:
    """One headless Chromium with one tab, driven over the DevTools pipe."""

    def __init__(self, executable: str | None = None, *, width: int = 1280, height: int = 1600):
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise BrowserError(
                "no Chromium found: install Debian's chromium (apt-get install chromium)"
            )
        self.size = (width, height)
        self._next_id = 0
        self._buffer = b""
        self.page: Page | None = None
        self.session: str | None = None

    # ----------------------------------------------------------------------- process and pipe
    def __enter__(self) -> Browser:
        self._profile = tempfile.TemporaryDirectory(prefix="gpa-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def child_fds():  # the protocol's fixed descriptors: 3 reads commands, 4 writes replies
            high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)  # out of the way of 3 and 4
            high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)  # dup2 leaves the copy inheritable
            os.dup2(high_w, 4)

        cmd = [
            self.executable,
            *FLAGS,
            f"--user-data-dir={self._profile.name}",
            f"--window-size={self.size[0]},{self.size[1]}",
            "about:blank",
        ]
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_fds,
            close_fds=False,  # closing would run after child_fds and take 3 and 4 too
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": self.size[0],
                "height": self.size[1],
                "deviceScaleFactor": 1,
                "mobile": False,
            },
            session=True,
        )
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except BrowserError:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()

    def _send(self, message: dict) -> None:
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")

    def _receive(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium closed the pipe (exit status {self._proc.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _event(self, message: dict) -> None:
        if self.page is None:
            return
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.page.messages.append(f"{params['type']}: {text}")
            if params["type"] in ("error", "assert"):
                self.page.errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.page.errors.append(f"uncaught exception: {text}")
        elif method == "Log.entryAdded":
            entry = params["entry"]
            self.page.messages.append(f"{entry['level']}: {entry['text']}")
            if entry["level"] == "error":
                self.page.errors.append(
                    f"{entry['source']}: {entry['text']} {entry.get('url', '')}"
                )

    def call(
        self, method: str, params: dict | None = None, *, session: bool = False, timeout: float = 30
    ) -> dict:
        """Send one command and return its result; events that arrive meanwhile are recorded."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self._send(message)
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self._event(reply)

    def _drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        try:
            while True:
                self._event(self._receive(deadline))
        except BrowserError as err:
            if "in time" not in str(err):
                raise

    # ----------------------------------------------------------------------- pages
    def open(self, path_or_url: Path | str, *, timeout: float = 60) -> Page:
        """Navigate the tab and wait for the load event; returns the page's record of errors."""
        url = path_or_url.resolve().as_uri() if isinstance(path_or_url, Path) else path_or_url
        self.page = Page(url)
        result = self.call("Page.navigate", {"url": url}, session=True)
        if result.get("errorText"):
            raise BrowserError(f"could not open {url}: {result['errorText']}")
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline)
            if message.get("method") == "Page.loadEventFired":
                return self.page
            self._event(message)

    def evaluate(self, expression: str, *, timeout: float = 30) -> Any:
        """The value of a JavaScript expression in the page (promises awaited, JSON-able values)."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=True,
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(
                f"{expression!r} threw: {details.get('exception', {}).get('description', details)}"
            )
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float = 30, settle: float = 0.3) -> bool:
        """Poll a JavaScript expression until it is truthy (True) or ``timeout`` s pass (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(expression):
                self._drain(settle)  # let late console messages arrive
                return True
            self._drain(0.1)
        return False

    def screenshot(self, target: Path, *, selector: str | None = None) -> Path:
        """A PNG of the viewport, or of the element ``selector`` (scrolled into view), to ``target``."""
        params: dict[str, Any] = {"format": "png"}
        if selector:
            # Scroll the element to the top of the viewport, then clip in page coordinates; the
            # viewport (``height``) should be taller than the element.
            box = self.evaluate(
                f"(function () {{ var e = document.querySelector({json.dumps(selector)});"
                " if (!e) { return null; } e.scrollIntoView({block: 'start'});"
                " var r = e.getBoundingClientRect();"
                " return {x: r.left + window.scrollX, y: r.top + window.scrollY,"
                " width: r.width, height: r.height}; })()"
            )
            if box is None:
                raise BrowserError(f"no element matches {selector!r}")
            self._drain(0.3)  # let the page settle after the scroll
            params["clip"] = {**box, "scale": 1}
        data = self.call("Page.captureScreenshot", params, session=True)["data"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(data))
        return target
