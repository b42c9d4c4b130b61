"""The wheel is the product: build it, install it into an empty virtualenv outside the checkout, and
use it as a user would, from a folder of its own.

1. ``pip wheel`` builds the wheel from this checkout (setup.py adds the compiled catalogues and the
   front-end libraries);
2. a new virtualenv in a temporary folder gets the wheel, its dependencies at the versions of
   requirements/dev.lock;
3. in another temporary folder: ``crmhub migrate``, then ``crmhub run`` — ``/login``, every script
   and stylesheet it links and every front-end library (``/static/vendor/…``) answer 200;
4. ``crmhub demo`` in a third folder — Chromium logs in as admin and opens the main pages: no
   request fails and the browser console shows no error, and each page's libraries are loaded; a
   call recording in ``/calls`` plays (the demo dialogues come from the wheel).

Run by scripts/test (``.venv/bin/python scripts/check_wheel.py``); prints what it checked and exits
non-zero on the first failure. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import ARGS as CHROMIUM_ARGS  # noqa: E402  (the browser tests' chromium)
from tests.browser.conftest import CHROMIUM  # noqa: E402

LOCK = ROOT / "requirements" / "dev.lock"
# page → what its scripts define once loaded (the front-end libraries come from the wheel)
PAGES = {
    "/": ("htmx",),
    "/deals": ("htmx", "Sortable"),
    "/reports/funnel": ("htmx", "Chart"),
    "/inbox": ("htmx",),
    "/clients": ("htmx",),
    "/calls": ("htmx",),
    "/settings/pipelines": ("htmx", "Sortable"),
}
ASSET = re.compile(r"""<(?:script[^>]*\bsrc|link[^>]*\bhref)="(/[^"]+\.(?:js|css|svg))""")
QUIET_PIP = ("--quiet", "--disable-pip-version-check")


class CheckFailed(Exception):
    pass


def step(text: str) -> None:
    print(f"-- {text}", flush=True)


def run(args: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env)
    if result.returncode != 0:
        raise CheckFailed(f"{' '.join(map(str, args))} exited {result.returncode}:\n"
                          f"{result.stdout[-3000:]}{result.stderr[-3000:]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Hub:
    """``crmhub <command>`` of the installed wheel, serving on a free port of 127.0.0.1."""

    def __init__(self, venv: Path, workdir: Path, command: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{command}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRMHUB_", "VIRTUAL_ENV"))}
        env["CRMHUB_SERVER_SECRET_KEY"] = "wheel-check"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.process = subprocess.Popen(
            [str(venv / "bin" / "crmhub"), command, "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=workdir, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)

    def wait_ready(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CheckFailed(f"the hub exited {self.process.returncode}:\n"
                                  f"{self.log.read_text()[-3000:]}")
            try:
                if fetch(f"{self.base}/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise CheckFailed(f"the hub did not answer in {seconds:.0f} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def build_and_install(tmp: Path) -> Path:
    step("building the wheel")
    dist = tmp / "dist"
    run([sys.executable, "-m", "pip", "wheel", *QUIET_PIP, "--no-deps", "-w", dist, ROOT])
    wheel = next(dist.glob("crmhub-*.whl"))
    print(f"   {wheel.name}: {wheel.stat().st_size / 1024:.0f} KiB")
    step("installing it into an empty virtualenv")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", venv])
    run([venv / "bin" / "pip", "install", *QUIET_PIP, "-c", LOCK, wheel], cwd=tmp)
    return venv


def check_run(venv: Path, tmp: Path) -> None:
    workdir = tmp / "run"
    workdir.mkdir()
    step("crmhub migrate, crmhub run from a folder of its own; /login and its assets")
    run([venv / "bin" / "crmhub", "migrate"], cwd=workdir, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    hub = Hub(venv, workdir, "run")
    try:
        hub.wait_ready()
        status, body = fetch(f"{hub.base}/login")
        if status != 200:
            raise CheckFailed(f"/login answered {status}")
        assets = sorted(set(ASSET.findall(body.decode())))
        if not assets:
            raise CheckFailed("/login links no script or stylesheet")
        # the front-end libraries too (the other pages link them)
        manifest = json.loads((ROOT / "hub" / "webui" / "vendor.json").read_text(encoding="utf-8"))
        assets += [f"/static/vendor/{name}" for name in manifest["files"]]
        for asset in assets:
            status, content = fetch(hub.base + asset)
            if status != 200 or not content:
                raise CheckFailed(f"{asset} answered {status} ({len(content)} bytes)")
            print(f"   200 {asset} ({len(content)} bytes)")
    finally:
        hub.stop()


# the first player's duration once its metadata is loaded (0: no player, -1: it failed)
AUDIO_DURATION = """() => new Promise(done => {
    const audio = document.querySelector("audio");
    if (!audio) { done(0); return; }
    if (audio.readyState >= 1) { done(audio.duration); return; }
    audio.addEventListener("loadedmetadata", () => done(audio.duration));
    audio.addEventListener("error", () => done(-1));
    setTimeout(() => done(audio.duration || 0), 15000);
})"""


async def browse(base: str) -> None:
    from playwright.async_api import async_playwright

    problems: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = await browser.new_page(base_url=base, locale="ru-RU")
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        # (a request cut short by the next navigation is no failure: a missing file answers 404 above)
        page.on("requestfailed", lambda r: problems.append(f"failed {r.url}: {r.failure}")
                if r.failure != "net::ERR_ABORTED" else None)
        await page.goto("/login")
        await page.get_by_label("Логин").fill("admin")
        await page.get_by_label("Пароль").fill("admin")
        await page.get_by_role("button", name="Войти").click()
        await page.wait_for_url(f"{base}/")
        for path, names in PAGES.items():
            await page.goto(path)
            await page.wait_for_selector("body[data-live='true']")  # its scripts ran, its stream is open
            absent = [name for name in names
                      if not await page.evaluate(f"typeof window.{name} !== 'undefined'")]
            problems += [f"{path}: {name} is not loaded" for name in absent]
            print(f"   {path}: {', '.join(n for n in names if n not in absent) or 'nothing'} loaded")
        await page.goto("/calls")  # the demo's calls have recordings: the wheel's dialogues play
        seconds = await page.evaluate(AUDIO_DURATION)
        if not seconds > 0:
            problems.append(f"/calls: the first recording does not play (duration {seconds})")
        print(f"   /calls: a recording of {seconds:.1f} s plays")
        await browser.close()
    if problems:
        raise CheckFailed("the pages of the installed wheel:\n" + "\n".join(problems))


def check_demo(venv: Path, tmp: Path) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            raise CheckFailed(f"{CHROMIUM} is missing")
        step(f"crmhub demo in the browser: skipped ({CHROMIUM} is not installed)")
        return
    workdir = tmp / "demo"
    workdir.mkdir()
    step("crmhub demo from a folder of its own; Chromium opens its pages")
    hub = Hub(venv, workdir, "demo")
    try:
        hub.wait_ready()
        asyncio.run(browse(hub.base))
    finally:
        hub.stop()


def main() -> int:
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="crmhub-wheel-"))
    try:
        venv = build_and_install(tmp)
        check_run(venv, tmp)
        check_demo(venv, tmp)
    except CheckFailed as exc:
        print(f"wheel check FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wheel check passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
