"""A real headless Chromium driven through Debian's chromedriver (W3C WebDriver over HTTP).

Why plain HTTP and not selenium: the protocol calls the tests need (open a page, run a script,
type, screenshot, read the console) are a dozen JSON requests, and Debian's ``chromium`` and
``chromium-driver`` packages (installed by ``scripts/testenv``) are all that is needed.
Skips with the reason when they are absent.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .ports import free_port, wait_for_port

#: The flags the issue asks for: no sandbox (root in CI), nothing phoned home.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,1000",
)


def find_chromium() -> tuple[str, str] | None:
    """(chromium, chromedriver) paths, or None when either is not installed."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        return None
    return chromium, driver


SKIP_REASON = ("Chromium not installed: apt-get install chromium chromium-driver "
               "(scripts/testenv all does it)")


class Browser:
    """One WebDriver session."""

    def __init__(self, base: str, session: str) -> None:
        self.base = base
        self.session = session

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.base}/session/{self.session}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())["value"]

    def open(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script: str, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            got = self.run(script)
            if got or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    def type_into(self, css: str, text: str) -> None:
        elem = self._call("POST", "/element", {"using": "css selector", "value": css})
        eid = next(iter(elem.values()))
        self._call("POST", f"/element/{eid}/value", {"text": text})

    def console(self) -> list[dict[str, Any]]:
        """Console and page errors since the last call (chromedriver's ``browser`` log)."""
        got = self._call("POST", "/se/log", {"type": "browser"})
        return list(got) if isinstance(got, list) else []

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))
        return path


@contextmanager
def chromium(profile: Path) -> Iterator[Browser]:
    """A headless Chromium with a fresh profile in ``profile``; the driver is stopped after."""
    found = find_chromium()
    if found is None:
        raise RuntimeError(SKIP_REASON)
    binary, driver = found
    port = free_port()
    proc = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, proc=proc)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {"binary": binary, "args": [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]},
        }}}
        req = urllib.request.Request(f"{base}/session", data=json.dumps(caps).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            session = json.loads(resp.read())["value"]["sessionId"]
        browser = Browser(base, session)
        try:
            yield browser
        finally:
            urllib.request.urlopen(urllib.request.Request(
                f"{base}/session/{session}", method="DELETE"), timeout=30).close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
