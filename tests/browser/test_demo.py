"""The demo's recordings in Chromium: the demo data's answered calls, with the dialogues ``crmhub demo``
leaves for them, play and seek in ``/calls`` and in a deal's timeline."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import expect
from sqlalchemy import select

from hub.config import Config
from hub.crm import demo
from hub.crm.models import Call
from hub.telephony.simulator import leave_recording
from hub.web.keys import DB

# Every player of the page once its metadata is loaded: [duration, seekable end] (-1: it failed).
PLAYERS = """() => Promise.all(Array.from(document.querySelectorAll("audio"), audio => new Promise(done => {
    const answer = () => done([audio.duration, audio.seekable.length ? audio.seekable.end(0) : 0]);
    if (audio.readyState >= 1) { answer(); return; }
    audio.addEventListener("loadedmetadata", answer);
    audio.addEventListener("error", () => done([-1, 0]));
    audio.load();
})))"""
# The first player sought to the given second: where it is once the seek is done.
SEEK = """seconds => new Promise(done => {
    const audio = document.querySelector("audio");
    audio.addEventListener("seeked", () => done(audio.currentTime), {once: true});
    audio.currentTime = seconds;
})"""


@pytest.fixture
def config(config: Config, tmp_path: Path) -> Config:
    config.asterisk.recordings_dir = str(tmp_path / "recordings")
    return config


async def test_the_demo_calls_recordings_play_and_seek(page: Any, app: web.Application,
                                                      config: Config) -> None:
    summary = await demo.fill(app[DB])
    for name in summary.recordings:  # what crmhub demo does on start
        leave_recording(Path(config.asterisk.recordings_dir), name)
    async with app[DB].reading() as s:
        deal_id = await s.scalar(select(Call.deal_id).where(Call.recording.is_not(None),
                                                            Call.deal_id.is_not(None)).limit(1))

    await page.goto("/login")
    await page.get_by_label("Логин").fill("admin")
    await page.get_by_label("Пароль").fill("admin")
    await page.get_by_role("button", name="Войти").click()
    await expect(page).not_to_have_url(re.compile(r"/login"))

    for path in ("/calls", f"/deals/{deal_id}"):
        await page.goto(path)
        players = await page.evaluate(PLAYERS)
        assert players, path
        assert all(duration > 5 and seekable > 5 for duration, seekable in players), (path, players)
        assert await page.evaluate(SEEK, 4.5) == pytest.approx(4.5, abs=0.1)
        await expect(page.locator(".recording-missing:visible")).to_have_count(0)
