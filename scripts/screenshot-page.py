"""Regenerate docs/session-page.png: the built-in routine's session page in a phone-sized
headless Chromium, paused on a spoken line of the second pose.

Run: .venv/bin/python scripts/screenshot-page.py   (needs what make test installs)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coach.export import write_export  # noqa: E402
from coach.export.captions import captions  # noqa: E402
from coach.export.times import milliseconds  # noqa: E402
from coach.routine import load_routine  # noqa: E402
from coach.session import build_session  # noqa: E402
from tests.browser import phone_browser  # noqa: E402

SEEK = """
const [seconds, done] = arguments;
const audio = document.getElementById("audio");
audio.addEventListener("seeked", () => requestAnimationFrame(() => done(true)), {once: true});
audio.currentTime = seconds;
"""


def main() -> None:
    session = build_session(load_routine())
    second_pose = session.timeline.sections[1]
    line = next(c for c in captions(session.timeline) if c.start > second_pose.hold_start)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "session.html"
        write_export(session, str(page))
        with phone_browser() as browser:
            browser.set_script_timeout(30)
            browser.get(page.as_uri())
            browser.execute_async_script(SEEK, (milliseconds(line.start) + 400) / 1000)
            browser.save_screenshot(str(ROOT / "docs" / "session-page.png"))
    print(f"wrote docs/session-page.png at {milliseconds(line.start) / 1000:.1f} s: {' '.join(line.lines)}")


if __name__ == "__main__":
    main()
