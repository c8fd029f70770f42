"""The session page (coach export -o session.html): one file with the audio inside, tested
as written and then in a real, headless Chromium."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from pathlib import Path

import pytest

from tests.browser import phone_browser, require_chromium, requests_made
from tests.test_export import synthetic_session

from coach.export import write_export
from coach.export.captions import captions
from coach.export.outline import chapters
from coach.export.page import page_data
from coach.export.times import milliseconds

pytest.importorskip("av", reason="PyAV (coach[media]) is installed by make test")

WAIT_S = 30  # a busy two-core machine can take a while to start Chromium


@pytest.fixture(scope="module")
def session():
    return synthetic_session()


@pytest.fixture(scope="module")
def page(session, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("page") / "session.html"
    assert write_export(session, str(path)) == "html"
    return path


def embedded(page: Path) -> tuple[dict, bytes]:
    text = page.read_text(encoding="utf-8")
    data = re.search(r'<script type="application/json" id="session">(.*?)</script>', text, re.S)[1]
    audio = re.search(r'<script type="text/plain" id="audio-data">(.*?)</script>', text, re.S)[1]
    return json.loads(data), base64.b64decode(audio)


def test_page_holds_the_audio_and_the_timeline(session, page):
    data, audio = embedded(page)
    assert audio[4:8] == b"ftyp", "AAC in MP4"
    assert data["length_ms"] == milliseconds(session.timeline.length)
    assert data["chapters"] == [[milliseconds(c.start), c.title] for c in chapters(session.timeline)]
    assert [c[2] for c in data["cues"]] == [" ".join(c.lines) for c in captions(session.timeline)]
    assert data["title"] == session.routine.title and data["props"] == ["strap", "mat"]


def test_page_of_the_builtin_routine_is_under_1_4_times_its_audio(tmp_path, monkeypatch):
    """Base64 costs a third; the page itself (about 10 KB) and its captions must fit in the
    rest. (A session of a minute or two is over: its fixed part weighs more there.)"""
    from coach.routine import load_routine
    from coach.session import build_session

    monkeypatch.setenv("COACH_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "builtin.html"
    write_export(build_session(load_routine()), str(path))
    _, audio = embedded(path)
    assert path.stat().st_size < 1.4 * len(audio)


def test_page_names_its_controls_in_the_routines_language(session):
    english = page_data(session)
    assert english["labels"]["play"] == "Play" and english["labels"]["about"] == "About this session"
    german = page_data(synthetic_session(dataclasses.replace(session.routine, language="de-AT")))
    assert german["labels"] == {"play": "Abspielen", "pause": "Anhalten", "previous": "Vorige Übung",
                                "next": "Nächste Übung", "position": "Position", "poses": "Übungen",
                                "about": "Über diese Einheit", "props": "Hilfsmittel"}
    assert german["chapters"][0][1] == "Einleitung"


def test_page_asks_for_nothing_outside_itself(page):
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "<link" not in text and "@import" not in text and "url(" not in text
    assert "default-src 'none'" in text  # the CSP forbids any request the page did not make itself


def test_page_text_is_escaped(tmp_path):
    from dataclasses import replace

    from tests.test_export import make_routine

    routine = replace(make_routine(), title="</script><b>Hips</b> & back", description="<img src=x>")
    path = tmp_path / "odd.html"
    write_export(synthetic_session(routine), str(path))
    data, _ = embedded(path)
    assert data["title"] == routine.title and data["description"] == "<img src=x>"
    assert "<title>&lt;/script&gt;&lt;b&gt;Hips&lt;/b&gt; &amp; back</title>" in path.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# In Chromium

def wait_for(driver, script: str, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(
        lambda d: d.execute_script(script), message=f"waited {WAIT_S} s for {what}")


SEEK = """
const [seconds, done] = arguments;
const audio = document.getElementById("audio");
audio.addEventListener("seeked", () => requestAnimationFrame(() => {
  const words = document.getElementById("words");
  done([audio.currentTime, words.textContent, words.classList.contains("said"),
        document.getElementById("chapter").textContent]);
}), {once: true});
audio.currentTime = seconds;
"""


@pytest.fixture(scope="module")
def browser():
    require_chromium()
    with phone_browser() as driver:
        driver.set_script_timeout(WAIT_S)
        yield driver


def test_page_plays_in_chromium(session, page, browser):
    browser.get(page.as_uri())
    duration = wait_for(browser, "const a = document.getElementById('audio');"
                                 "return a.readyState >= 1 && a.duration", "the audio to load")
    assert abs(duration - session.timeline.length_s) < 0.05
    assert browser.execute_script("return document.getElementById('audio').error") is None
    assert browser.title == session.routine.title

    # The third chapter, tapped: the position is its start, and the page says where it is.
    found = chapters(session.timeline)
    buttons = browser.find_elements("css selector", "#chapters button")
    assert [b.text.split(maxsplit=1)[1] for b in buttons] == [c.title for c in found]
    buttons[2].click()
    at = wait_for(browser, "const a = document.getElementById('audio');"
                           "return !a.seeking && a.currentTime", "the jump to chapter 3")
    assert abs(at - found[2].start / 22050) < 0.001
    assert browser.find_element("id", "chapter").text == found[2].title
    assert buttons[2].get_attribute("aria-current") == "true"
    assert browser.execute_script("return navigator.mediaSession.metadata.title") == found[2].title
    assert browser.execute_script("return navigator.mediaSession.metadata.album") == session.routine.title

    browser.find_element("id", "next").click()
    at = wait_for(browser, "const a = document.getElementById('audio');"
                           "return !a.seeking && a.currentTime", "the next pose")
    assert abs(at - found[3].start / 22050) < 0.001


def test_page_shows_the_words_when_they_are_spoken(session, page, browser):
    browser.get(page.as_uri())
    wait_for(browser, "return document.getElementById('audio').readyState >= 1", "the audio to load")
    cues = captions(session.timeline)
    for cue in (cues[0], cues[len(cues) // 2], cues[-1]):
        middle_ms = milliseconds((cue.start + cue.end) // 2)
        _, words, said, _ = browser.execute_async_script(SEEK, middle_ms / 1000)
        assert (words, said) == (" ".join(cue.lines), False)
    # Just after a line ends, in the silence before the next: that line, dimmed.
    gap = next(a for a, b in zip(cues, cues[1:]) if milliseconds(b.start) - milliseconds(a.end) > 100)
    _, words, said, _ = browser.execute_async_script(SEEK, (milliseconds(gap.end) + 50) / 1000)
    assert (words, said) == (" ".join(gap.lines), True)


def dashed_routine():
    """Words that a dash or a sign joins to the word before them: one word of the engine's,
    held together on a caption line by no-break spaces."""
    from dataclasses import replace

    from tests.test_export import make_routine

    plain = make_routine()
    return replace(plain, sides=("droite ➡️", "gauche 左"),
                   intro=("Lie down — slowly — and rest, then breathe.", plain.intro[1]))


def worded_session(routine=None):
    """The synthetic session with a time for every word: evenly spread over each clip."""
    from dataclasses import replace

    from coach.speech.clip import Word, word_spans
    from coach.timeline import build_timeline

    plain = synthetic_session(routine)
    words = {}
    for text, clip in plain.speech.items():
        spans = word_spans(text)
        step = len(clip) // len(spans)
        words[text] = [Word(text[a:b], i * step, (i + 1) * step) for i, (a, b) in enumerate(spans)]
    timeline = build_timeline(plain.routine, {t: len(c) for t, c in plain.speech.items()},
                              {k: len(c) for k, c in plain.chimes.items()},
                              plain.options.timeline_options, speech_words=words)
    return replace(plain, timeline=timeline)


WORDS_LIT = """
const spans = [...document.querySelectorAll("#words span")];
return [document.getElementById("words").textContent,
        spans.filter((s) => !s.classList.contains("ahead")).map((s) => s.textContent)];
"""


def test_every_word_group_on_the_page_is_one_word_of_the_engine_and_starts_when_it_does():
    from coach.export.page import page_cues

    session = worded_session(dashed_routine())
    starts = sorted(w.start for e in session.timeline.events if e.kind == "speech" for w in e.words)
    cues = page_cues(session.timeline)
    assert any("—" in text for _, _, text, _ in cues) and any("➡️" in text for _, _, text, _ in cues)
    for (_, _, text, groups), caption in zip(cues, captions(session.timeline), strict=True):
        # The page splits the text at its spaces, as page.html does: one token per group.
        assert len(text.split(" ")) == sum(n for _, n in groups) == len(groups)
        assert [at for at, _ in groups] == [milliseconds(at) for at in caption.word_starts]
    assert sum(len(groups) for *_, groups in cues) == len(starts)


@pytest.mark.parametrize("routine", [None, dashed_routine()], ids=["plain", "dashes and signs"])
def test_page_lights_each_word_when_it_is_said(browser, tmp_path, routine):
    session = worded_session(routine)
    path = tmp_path / "worded.html"
    write_export(session, str(path))
    browser.get(path.as_uri())
    wait_for(browser, "return document.getElementById('audio').readyState >= 1", "the audio to load")
    event = next(e for e in session.timeline.events if e.kind == "speech" and len(e.words) >= 4)
    for index in (2, len(event.words) - 1):  # the third word, and the last
        word = event.words[index]
        cue = next(c for c in captions(session.timeline) if c.start <= word.start < c.end)
        between = milliseconds(word.start) + 1  # just after the word starts
        browser.execute_async_script(SEEK, between / 1000)
        text, lit = browser.execute_script(WORDS_LIT)
        assert text == " ".join(cue.lines)
        said = ["\u00a0".join(w.text.split()) for w in event.words
                if cue.start <= w.start and milliseconds(w.start) <= between]
        assert lit == said and len(said) >= 1


def test_page_with_a_comment_opener_and_a_script_tag_in_its_text_still_plays(browser, tmp_path):
    # Inside the page's <script>, "<!--" then "<script" would make the browser read the real
    # end tag as text: the page would show nothing and play nothing.
    from dataclasses import replace

    from tests.test_export import make_routine

    routine = replace(make_routine(), credit="Notes <!-- <script> by Sam", description="a </script> b <!-- c")
    path = tmp_path / "comment.html"
    write_export(synthetic_session(routine), str(path))
    data, _ = embedded(path)
    assert data["credit"] == routine.credit and data["description"] == routine.description
    browser.get(path.as_uri())
    duration = wait_for(browser, "const a = document.getElementById('audio');"
                                 "return a.readyState >= 1 && a.duration", "the audio to load")
    assert duration > 0
    assert routine.credit in browser.find_element("tag name", "body").get_attribute("textContent")


def test_a_german_page_shows_german_controls_in_chromium(session, browser, tmp_path):
    path = tmp_path / "de.html"
    write_export(synthetic_session(dataclasses.replace(session.routine, language="de")), str(path))
    browser.get(path.as_uri())
    wait_for(browser, "return document.getElementById('audio').readyState >= 1", "the audio to load")
    shown = browser.execute_script(
        "const $ = (id) => document.getElementById(id);"
        "return [$('play').getAttribute('aria-label'), $('next').getAttribute('aria-label'),"
        "        document.querySelector('#about summary').textContent, $('props').textContent];")
    assert shown == ["Abspielen", "Nächste Übung", "Über diese Einheit", "Hilfsmittel: strap, mat"]
    browser.execute_script("document.getElementById('audio').play()")
    assert wait_for(browser, "return document.getElementById('play').getAttribute('aria-label') == 'Anhalten'",
                    "the play button to say Anhalten")


def test_page_makes_no_network_request(page, browser):
    browser.get_log("performance")  # what the browser did before this test
    browser.get(page.as_uri())
    wait_for(browser, "return document.getElementById('audio').readyState >= 1", "the audio to load")
    browser.find_elements("css selector", "#chapters button")[1].click()
    wait_for(browser, "return !document.getElementById('audio').seeking", "a jump")
    made = [r for r in requests_made(browser) if r["document"] == page.as_uri()]
    schemes = sorted({r["url"].split(":", 1)[0] for r in made})
    assert schemes == ["blob", "file"], made
    assert [r["url"] for r in made if r["url"].startswith("file:")] == [page.as_uri()]


def test_a_right_to_left_routine_reads_right_to_left_on_the_page(browser, tmp_path):
    # A Hebrew routine: each text on the page takes its direction from its own words, so a
    # sentence's full stop and a side in brackets are where a reader of Hebrew expects them
    # (the page is laid out left to right; a Hebrew line in it ended with its stop on the right).
    from dataclasses import replace

    from tests.test_export import make_routine

    base = make_routine()
    poses = (replace(base.poses[0], name="רגל למעלה", setup=("הרימו את הרגל {side}.",), release=("הורידו אותה.",)),
             replace(base.poses[1], name="רגל לצד", cues=()))
    routine = replace(base, title="מתיחות לגב", credit="נכתב עבור coach", description="שכבו על הגב.",
                      sides=("ימין", "שמאל"), intro=("שכבו על הגב.",), poses=poses)
    path = tmp_path / "he.html"
    write_export(synthetic_session(routine), str(path))
    browser.get(path.as_uri())
    wait_for(browser, "return document.getElementById('audio').readyState >= 1", "the audio to load")
    browser.execute_async_script(SEEK, 0.5)  # the intro is said: a Hebrew line is shown
    directions = browser.execute_script(
        "const d = (el) => [el.textContent, getComputedStyle(el).direction];"
        "return [d(document.getElementById('words')), d(document.getElementById('title')),"
        "        d(document.getElementById('credit')), d(document.querySelector('#chapters li:nth-child(2) span'))];")
    assert directions == [["שכבו על הגב.", "rtl"], ["מתיחות לגב", "rtl"], ["נכתב עבור coach", "rtl"],
                          ["רגל למעלה (ימין)", "rtl"]]
    # An English name stays left to right.
    first = browser.execute_script("const el = document.querySelector('#chapters li:first-child span');"
                                   "return [el.textContent, getComputedStyle(el).direction];")
    assert first[1] == "ltr", first
