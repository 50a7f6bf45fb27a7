"""The web simulator in a real headless Chromium: attach a voice note, see its transcript."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.browsers import ARGS


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is a test system tool")
async def test_attach_voice_note_in_the_web_simulator(
    live_url: str, clips: dict[str, Path]
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=ARGS
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{live_url}/simulator")
            await page.fill("#phone", "+5215599990000")
            await page.set_input_files("#audio", str(clips["human"]))
            voice_line = page.locator(".msg.in", has_text="asesor")
            await voice_line.wait_for(timeout=120_000)
            assert (await voice_line.inner_text()).startswith("🎤")
            reply = page.locator(".msg.out", has_text="persona")
            await reply.wait_for(timeout=45_000)
        finally:
            await browser.close()
