"""The time of every word, on real synthesized speech, with each installed engine.

Where the words are is checked in the audio itself: pauses are found with numpy (5 ms
frames, quiet when their RMS is 40 dB or more below the loudest frame's, as
docs/engines.md defines sound for word times) and never taken from the word times
being tested. The caption tests export the built-in routine as WAV, SRT, VTT and JSON
and look for sound in the WAV where each caption starts.
"""

from __future__ import annotations

import json
import re
import wave

import numpy as np
import pytest

from tests.fakes import count_renders

from coach.audio import SAMPLE_RATE
from coach.export import write_export
from coach.routine import load_routine
from coach.session import SessionOptions, build_session
from coach.speech import SpeechSettings, get_engine, piper, synthesize_clips
from coach.speech.clip import place_words, word_spans

ENGINES = [
    "espeak",
    pytest.param("piper", marks=pytest.mark.skipif(piper.missing_reason() is not None,
                                                   reason="piper-tts not installed: pip install 'coach[natural]'")),
]
TEXTS = [
    "Breathe in, and let your shoulders soften. Now, slowly, lift your right leg toward the ceiling.",
    "Keep the knee soft; press the heel away. Stay here, and breathe. Then lower it down to the mat.",
    "In the quiet, notice the stretch. Hold for 10 seconds, or 3.5 breaths, whichever comes first.",
    "Reach for a strap with both hands. Draw the white-haired knee in, then let it go: rest.",
]
FRAME = 110  # 5 ms
TOLERANCE = round(0.020 * SAMPLE_RATE)


def frame_levels(audio: np.ndarray) -> np.ndarray:
    """RMS of every 5 ms frame."""
    count = len(audio) // FRAME
    frames = audio[: count * FRAME].astype(np.float64).reshape(count, FRAME)
    return np.sqrt(np.mean(frames**2, axis=1))


def pauses(audio: np.ndarray, shortest: int) -> list[tuple[int, int]]:
    """Quiet runs of at least `shortest` samples inside the clip: (where it falls quiet, where sound resumes)."""
    levels = frame_levels(audio)
    quiet = levels < levels.max() * 10 ** (-40 / 20)
    runs, start = [], None
    for i, q in enumerate(quiet):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if start > 0 and (i - start) * FRAME >= shortest:
                runs.append((start * FRAME, i * FRAME))
            start = None
    return runs


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("speed", [0.6, 1.0, 1.8])
def test_a_word_after_a_pause_starts_where_the_sound_resumes(cold_cache, engine, speed):
    # A pause is longer than the silent closure of a plosive inside a word: 110 ms at normal
    # speed, scaled with the speed (61 ms at 1.8, 183 ms at 0.6). The engine may not pause at
    # every comma (espeak at 1.8 often does not); where the audio has a pause between a word
    # after punctuation and the one before, the word must start where that pause ends.
    shortest = round(0.110 / speed * SAMPLE_RATE)
    clips = synthesize_clips(TEXTS, SpeechSettings(speed=speed, engine=engine))
    checked = 0
    for text, clip in clips.items():
        words, found = clip.words, pauses(clip.samples, shortest)
        for i in range(1, len(words)):
            if words[i - 1].text[-1] not in ",.;:":
                continue
            until = words[i + 1].start if i + 1 < len(words) else len(clip.samples)
            between = [resumed for _, resumed in found if words[i - 1].start < resumed < until]
            if not between:
                continue
            resumed = min(between, key=lambda r: abs(r - words[i].start))
            assert abs(words[i].start - resumed) <= TOLERANCE, (
                f"{engine} at {speed}: {words[i].text!r} starts {1000 * (words[i].start - resumed) / SAMPLE_RATE:+.0f} "
                f"ms from where the sound resumes after a pause, in {text!r}")
            checked += 1
    assert checked >= len(TEXTS), "every text pauses between its sentences"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("speed", [0.6, 1.0])
def test_a_word_before_a_pause_ends_where_its_sound_stops(cold_cache, engine, speed):
    # espeak at 0.6 pauses after "mat" and "anchored" with no comma there, and marks the next
    # word on its first sample, in the middle of a 5 ms frame: that frame's sound was taken
    # for the word before, which then ended where the next began, the pause inside it.
    shortest = round(0.110 / speed * SAMPLE_RATE)
    texts = TEXTS + ["Welcome. For this practice you need a mat and a strap.",
                     "Keep your pelvis anchored and heavy on the mat."]
    checked = 0
    for text, clip in synthesize_clips(texts, SpeechSettings(speed=speed, engine=engine)).items():
        words, found = clip.words, pauses(clip.samples, shortest)
        for word, after in zip(words, words[1:]):
            # A pause after which the next word starts (not the closure of a final "t").
            before = [fell for fell, resumed in found
                      if word.start < fell and abs(resumed - after.start) <= TOLERANCE]
            if not before:
                continue
            assert abs(word.end - before[0]) <= TOLERANCE, (
                f"{engine} at {speed}: {word.text!r} ends {1000 * (word.end - before[0]) / SAMPLE_RATE:+.0f} "
                f"ms from where its sound stops before a pause, in {text!r}")
            checked += 1
    assert checked >= len(texts), "every text pauses between its sentences"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("speed", [0.6, 1.8])
def test_a_pause_mark_inside_a_quote_or_bracket_is_a_pause_too(cold_cache, engine, speed):
    # '"Hello," she': the comma is not the word's last character. Piper's "she" sounds a
    # little before its mark; taken for no pause mark, it was not moved back to the pause's
    # end, and "Hello," then ran on to it, the whole pause inside it (+100 to +400 ms).
    shortest = round(0.110 / speed * SAMPLE_RATE)
    texts = ['"Hello," she said. \'Quiet,\' he said.',
             '(Breathe in.) Now breathe out, slowly. [Rest.] Then "soften," and stay.',
             'Say "ready." Then lift the leg, "slowly," toward the ceiling.']
    checked = 0
    for text, clip in synthesize_clips(texts, SpeechSettings(speed=speed, engine=engine)).items():
        words, found = clip.words, pauses(clip.samples, shortest)
        for i in range(1, len(words)):
            if words[i - 1].text.rstrip("\"')]")[-1] not in ",.;:!?":
                continue
            until = words[i + 1].start if i + 1 < len(words) else len(clip.samples)
            between = [(fell, resumed) for fell, resumed in found if words[i - 1].start < resumed < until]
            if not between:
                continue
            fell, resumed = min(between, key=lambda pause: abs(pause[1] - words[i].start))
            where = f"{engine} at {speed}, {words[i - 1].text!r} {words[i].text!r} in {text!r}"
            assert abs(words[i].start - resumed) <= TOLERANCE, f"{where}: starts {1000 * (words[i].start - resumed) / SAMPLE_RATE:+.0f} ms from the sound"
            assert abs(words[i - 1].end - fell) <= TOLERANCE, f"{where}: ends {1000 * (words[i - 1].end - fell) / SAMPLE_RATE:+.0f} ms from the pause"
            checked += 1
    assert checked >= len(texts)


@pytest.mark.parametrize("engine", ENGINES)
def test_word_times_increase_lie_inside_the_clip_and_cover_the_text(cold_cache, engine):
    for speed in (0.6, 1.8):
        for text, clip in synthesize_clips(TEXTS, SpeechSettings(speed=speed, engine=engine)).items():
            words = clip.words
            assert " ".join(w.text for w in words).split() == text.split()
            assert words[0].start == 0, "trimming keeps 10 ms before the first sound"
            for word, after in zip(words, words[1:]):
                assert word.start <= word.end <= after.start
                assert word.start < after.start
            assert 0 <= words[-1].start < words[-1].end <= len(clip.samples)
            assert len(clip.samples) - words[-1].end <= round(0.030 * SAMPLE_RATE), "the last word ends with the sound"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_clip_from_the_cache_has_the_same_words(cold_cache, monkeypatch, engine):
    settings = SpeechSettings(speed=1.25, engine=engine)
    fresh = synthesize_clips(TEXTS[:2], settings)
    calls = count_renders(monkeypatch, get_engine(engine))
    cached = synthesize_clips(TEXTS[:2], settings)
    assert calls == [], "read from the cache"
    for text in TEXTS[:2]:
        assert cached[text].words == fresh[text].words and cached[text].words
        assert np.array_equal(cached[text].samples, fresh[text].samples)


def test_espeak_marks_are_mapped_by_character_offset_not_by_counting():
    # What espeak reports for this text (measured): "77" twice, "3.5" three times, nothing
    # for "the" after "In", a zero-length event at the very end.
    text = "In the white-haired morning, hold 77 seconds, or 3.5."
    marks = [(0, 0), (7, 5000), (20, 17000), (29, 21000), (34, 26000), (35, 28000), (37, 32000),
             (46, 40000), (49, 43000), (50, 45000), (51, 47000), (len(text) - 1, 52000)]
    words = place_words(text, marks, 52000)
    assert [w.text for w in words] == ["In", "the", "white-haired", "morning,", "hold", "77", "seconds,", "or", "3.5."]
    starts = [w.start for w in words]
    assert starts == [0, 2000, 5000, 17000, 21000, 26000, 32000, 40000, 43000]  # "the": 3/5 of In's time
    assert words[-1].end == 52000


def test_marks_in_a_bad_order_or_outside_the_clip_are_ignored():
    words = place_words("one two three", [(0, 0), (4, 900), (8, 500), (8, 99999)], 1000)
    assert [w.start for w in words] == sorted(w.start for w in words) and words[1].start == 900
    assert all(0 <= w.start <= w.end <= 1000 for w in words)


def test_a_word_is_a_run_of_characters_with_something_to_say():
    text = "— Rest now — then lift, “gently”."
    assert [text[a:b] for a, b in word_spans(text)] == ["— Rest", "now —", "then", "lift,", "“gently”."]


# --- captions ------------------------------------------------------------------------------

VTT_WORD_TIME = re.compile(r"<(\d\d):(\d\d):(\d\d)\.(\d\d\d)>")
CUE_TIMES = re.compile(r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d) --> (\d\d):(\d\d):(\d\d)[,.](\d\d\d)")


def to_seconds(h, m, s, ms) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def caption_cues(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text without VTT word times) of every cue of an SRT or VTT file."""
    cues = []
    for block in text.strip().removeprefix("WEBVTT").strip().split("\n\n"):
        lines = block.split("\n")
        timing = next(i for i, line in enumerate(lines) if "-->" in line)
        found = CUE_TIMES.fullmatch(lines[timing])
        assert found, lines[timing]
        body = VTT_WORD_TIME.sub("", " ".join(lines[timing + 1:]))
        cues.append((to_seconds(*found.groups()[:4]), to_seconds(*found.groups()[4:]), body))
    return cues


@pytest.fixture(scope="module", params=[0.75, 1.5])
def builtin_export(request, tmp_path_factory, speech_cache_dir):
    folder = tmp_path_factory.mktemp(f"words-{request.param}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COACH_CACHE_DIR", str(speech_cache_dir))
        session = build_session(load_routine("leg-stretches"), SessionOptions(speed=request.param))
    for fmt in ("wav", "srt", "vtt", "json"):
        write_export(session, str(folder / f"session.{fmt}"))
    with wave.open(str(folder / "session.wav"), "rb") as wav:
        audio = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.float32) / 32768
    return request.param, folder, audio, json.loads((folder / "session.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_every_caption_starts_within_30_ms_of_sound_and_never_mid_word(builtin_export, fmt):
    speed, folder, audio, doc = builtin_export
    levels = frame_levels(audio)
    sounding = np.flatnonzero(levels > 10 ** (-55 / 20))  # the WAV is exact zeros between sounds
    speech = [e for e in doc["events"] if e["kind"] == "speech"]
    cues = caption_cues((folder / f"session.{fmt}").read_text(encoding="utf-8"))
    long_ones = 0
    for event in speech:
        mine = [c for c in cues if event["start"] - 0.0005 <= c[0] < event["end"]]
        assert " ".join(c[2] for c in mine).split() == event["text"].split()
        long_ones += len(mine) > 1
        said = 0  # words of the utterance in the captions before this one
        for start, end, text in mine:
            first = round(start * SAMPLE_RATE) // FRAME
            next_sound = sounding[np.searchsorted(sounding, first)]
            assert (next_sound - first) * FRAME <= round(0.030 * SAMPLE_RATE), (
                f"speed {speed}: caption {text!r} at {start:.3f} s starts "
                f"{(next_sound - first) * FRAME / SAMPLE_RATE * 1000:.0f} ms before any sound")
            # It starts exactly on a word: the first word it shows, at that word's time, and
            # after the word before it has ended.
            count = len(text.split())
            words = event["words"]
            shown = " ".join(w["text"] for w in words).split()
            assert text.split() == shown[said:said + count]
            index = next(i for i, w in enumerate(words) if len(" ".join(x["text"] for x in words[:i + 1]).split()) > said)
            assert abs(words[index]["start"] - start) <= 0.0005
            assert index == 0 or words[index - 1]["end"] <= words[index]["start"]
            said += count
    assert long_ones >= 3, "some utterances are long enough to be cut into several captions"
