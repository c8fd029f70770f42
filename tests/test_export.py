"""Exports: every format reads one timeline, and the audio proves it.

Most tests build a Session by hand from synthetic clips that are easy to find in the
audio: each utterance is a 440 Hz tone whose length depends on its text, each chime a
decaying tone at its own pitch. The WAV is then analysed with numpy and the captions,
JSON and script are parsed back and compared with what the audio says. The last tests
do the same with real espeak-ng speech and the built-in chimes (build_session).
"""

from __future__ import annotations

import dataclasses

import errno
import io
import json
import os
import time
import stat
import pickle
import re
import subprocess
import sys
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import FullDisk

from coach.export import audio as export_audio
from coach.audio import SAMPLE_RATE, to_int16
from coach.errors import ExportError, UsageError
from coach.export import (
    CAPTION_LINE_CHARS,
    CAPTION_MAX_LINES,
    FORMATS,
    caption_time,
    check_output,
    pick_format,
    render_text,
    split_caption,
    write_export,
)
from coach.mixer import PEAK_TARGET, render_session, segments, session_pcm16, session_sounds
from coach.routine import Cue, Pose, Routine, load_routine_text
from coach.session import Session, SessionOptions
from coach.timeline import build_timeline, spoken_texts

SPEECH_HZ = 440.0
CHIME_HZ = {"hold_start": 1320.0, "midpoint": 1760.0, "side_switch": 2640.0}
ONE_MS = SAMPLE_RATE / 1000
REPO = Path(__file__).resolve().parent.parent

LONG_LINE = ("Lie down on your back with both legs long and let the floor hold you, so the stretch "
             "goes into your legs and never into your back; take three slow breaths here.")


# ---------------------------------------------------------------------------
# Synthetic sessions

def tone(seconds: float, hz: float, amplitude: float, decay: float | None = None) -> np.ndarray:
    """A cosine, so it is at full level on its very first sample: its onset is exact."""
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    out = amplitude * np.cos(2 * np.pi * hz * t)
    if decay:
        out *= np.exp(-t / decay)
    return out.astype(np.float32)


def speech_tone(text: str, amplitude: float = 0.5) -> np.ndarray:
    # Length grows with the text, so every event has its own length to check.
    return tone(0.2 + 0.015 * len(text), SPEECH_HZ, amplitude)


def short_chimes(amplitude: float = 0.5) -> dict[str, np.ndarray]:
    return {kind: tone(0.5, hz, amplitude, decay=0.15) for kind, hz in CHIME_HZ.items()}


def make_routine(extra_poses: int = 0) -> Routine:
    """Two poses on two sides, a long intro line (split over captions), a side switch."""
    poses = (
        Pose("Leg up", targets="hamstrings", setup=("Leg up, {side} leg.",), hold=4.0,
             release=("Release the {side} leg.",)),
        Pose("Leg to the side", targets="inner thigh",
             setup=("Leg to the side, {side} leg.", "Keep the {other_side} hip down."), hold=12.0,
             cues=(Cue("Breathe out slowly."), Cue("Soften the {other_side} hip.")),
             release=("Release and come back to the center.",)),
    ) + tuple(Pose(f"Pose {i}", setup=(f"Pose number {i}, {{side}} side.",), hold=4.0,
                   release=(f"Release pose {i}.",)) for i in range(3, 3 + extra_poses))
    return Routine(
        title="Test *stretches*",
        credit="Written for the coach tests",
        description="Two poses on two sides.",
        props=("strap", "mat"),
        sides=("right", "left"),
        intro=("Welcome to the test.", LONG_LINE),
        side_switch=("Now change to the {side} side.",),
        outro=("That is all.",),
        poses=poses,
    )


def synthetic_session(routine: Routine | None = None, options: SessionOptions = SessionOptions(countdown=3),
                      chimes: dict[str, np.ndarray] | None = None, amplitude: float = 0.5) -> Session:
    routine = routine or make_routine()
    chimes = chimes if chimes is not None else short_chimes()
    speech = {text: speech_tone(text, amplitude) for text in spoken_texts(routine, options.timeline_options)}
    timeline = build_timeline(routine, {t: len(c) for t, c in speech.items()},
                              {k: len(c) for k, c in chimes.items()}, options.timeline_options)
    return Session(routine, options, timeline, speech, chimes)


@pytest.fixture(scope="module")
def session() -> Session:
    return synthetic_session()


# ---------------------------------------------------------------------------
# Reading things back

def read_wav_file(path: Path) -> tuple[np.ndarray, wave._wave_params]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        frames = wav.readframes(params.nframes)
    return np.frombuffer(frames, dtype="<i2"), params


def full_scale(level: float) -> int:
    """A float level as the 16-bit sample value the WAV holds for it."""
    return int(to_int16(np.array([level]))[0])


def loudest_sound(session: Session) -> float:
    """The peak of the session's loudest clip, speech or chime, as it was given."""
    return max(float(np.max(np.abs(clip))) for clip in [*session.speech.values(), *session.chimes.values()])


def sound_runs(audio: np.ndarray, threshold: float = 0.02, bridge_ms: float = 20) -> list[tuple[int, int]]:
    """(first, end) sample of every stretch of sound; dips shorter than bridge_ms are bridged
    (a tone crosses zero, a decaying chime flickers around the threshold)."""
    loud = np.flatnonzero(np.abs(audio.astype(np.float64) / 32768) > threshold)
    if not loud.size:
        return []
    breaks = np.flatnonzero(np.diff(loud) > bridge_ms * ONE_MS)
    starts = np.concatenate([[loud[0]], loud[breaks + 1]])
    ends = np.concatenate([loud[breaks], [loud[-1]]]) + 1
    return list(zip(starts.tolist(), ends.tolist()))


def dominant_hz(audio: np.ndarray, start: int, count: int = 1024) -> float:
    piece = audio[start:start + count].astype(np.float64) * np.hanning(count)
    spectrum = np.abs(np.fft.rfft(piece))
    return float(np.argmax(spectrum) * SAMPLE_RATE / count)


def classify(hz: float) -> str:
    names = {"speech": SPEECH_HZ, **CHIME_HZ}
    return min(names, key=lambda name: abs(names[name] - hz))


def parse_time(text: str) -> float:
    h, m, rest = re.fullmatch(r"(\d\d):(\d\d):(\d\d[.,]\d\d\d)", text).groups()
    return int(h) * 3600 + int(m) * 60 + float(rest.replace(",", "."))


SRT_BLOCK = re.compile(r"(\d+)\n(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)\n((?:.+\n?)+)")
VTT_BLOCK = re.compile(r"(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)\n((?:.+\n?)+)")


def parse_srt(text: str) -> list[tuple[float, float, list[str]]]:
    blocks = text.strip("\n").split("\n\n")
    out = []
    for number, block in enumerate(blocks, start=1):
        match = SRT_BLOCK.fullmatch(block)
        assert match, f"not an SRT cue: {block!r}"
        assert int(match[1]) == number, "SRT cues are numbered 1, 2, 3, ..."
        out.append((parse_time(match[2]), parse_time(match[3]), match[4].rstrip("\n").split("\n")))
    return out


VTT_WORD_TIME = re.compile(r"<(\d\d:\d\d:\d\d\.\d\d\d)>")


def parse_vtt(text: str) -> list[tuple[float, float, list[str]]]:
    """The cues as (start, end, lines), per-word timestamps taken out of the lines (and
    checked: inside the cue and in order)."""
    header, *blocks = text.strip("\n").split("\n\n")
    assert header == "WEBVTT"
    out = []
    for block in blocks:
        match = VTT_BLOCK.fullmatch(block)
        assert match, f"not a WebVTT cue: {block!r}"
        start, end = parse_time(match[1]), parse_time(match[2])
        stamps = [parse_time(t) for t in VTT_WORD_TIME.findall(match[3])]
        assert stamps == sorted(stamps) and all(start <= t <= end for t in stamps), block
        out.append((start, end, VTT_WORD_TIME.sub("", match[3]).rstrip("\n").split("\n")))
    return out


def caption_groups(caps: list[tuple[float, float, list[str]]]) -> list[tuple[float, float, str]]:
    """Captions that follow each other without a gap are one utterance split up."""
    groups: list[list] = []
    for start, end, lines in caps:
        if groups and abs(start - groups[-1][1]) < 1e-9:
            groups[-1][1] = end
            groups[-1][2] += " " + " ".join(lines)
        else:
            groups.append([start, end, " ".join(lines)])
    return [tuple(g) for g in groups]


TXT_LINE = re.compile(r"\[(\d+):(\d\d)\] (.*)")


def parse_txt(text: str) -> list[tuple[int, str]]:
    return [(int(m[1]) * 60 + int(m[2]), m[3]) for m in map(TXT_LINE.fullmatch, text.splitlines()) if m]


# ---------------------------------------------------------------------------
# Every format agrees with the audio

def export_each(session, folder: Path, formats) -> dict[str, Path]:
    """session.FMT in `folder` for each format, written through write_export."""
    paths = {}
    for fmt in formats:
        paths[fmt] = folder / f"session.{fmt}"
        assert write_export(session, str(paths[fmt])) == fmt
    return paths


@pytest.fixture(scope="module")
def exported(session, tmp_path_factory) -> dict[str, Path]:
    return export_each(session, tmp_path_factory.mktemp("export"), FORMATS)


@pytest.fixture(scope="module")
def heard(exported) -> dict[str, list[tuple[int, int]]]:
    """What the WAV itself contains: sound runs, sorted by what they sound like."""
    audio, _ = read_wav_file(exported["wav"])
    found: dict[str, list[tuple[int, int]]] = {"speech": [], **{k: [] for k in CHIME_HZ}}
    for start, end in sound_runs(audio):
        found[classify(dominant_hz(audio, start))].append((start, end))
    return found


def test_speech_in_the_wav_is_where_the_timeline_says(session, heard):
    speech = [e for e in session.timeline.events if e.kind == "speech"]
    assert len(heard["speech"]) == len(speech) > 20
    assert {e.part for e in speech} >= {"intro", "setup", "cue", "countdown", "release", "switch", "outro"}
    for (start, end), event in zip(heard["speech"], speech):
        assert abs(start - event.start) <= 1 and abs(end - event.end) <= 1, event


def test_chimes_in_the_wav_are_where_the_timeline_says(session, heard):
    for kind in CHIME_HZ:
        expected = [e.start for e in session.timeline.events if e.kind == "chime" and e.part == kind]
        assert expected, kind
        found = [start for start, _ in heard[kind]]
        assert len(found) == len(expected), kind
        assert max(abs(a - b) for a, b in zip(found, expected)) <= 10 * ONE_MS, kind
    hold = next(e for e in session.timeline.events if e.kind == "hold" and e.length == 12 * SAMPLE_RATE)
    midpoint = next(e for e in session.timeline.events if e.part == "midpoint" and e.section == hold.section)
    # the halfway chime is heard exactly half the hold after the hold-start chime
    heard_start = min(heard["hold_start"], key=lambda run: abs(run[0] - hold.start))[0]
    heard_mid = min(heard["midpoint"], key=lambda run: abs(run[0] - midpoint.start))[0]
    assert abs((heard_mid - heard_start) - 6 * SAMPLE_RATE) <= 1


@pytest.mark.parametrize("fmt, parse", [("srt", parse_srt), ("vtt", parse_vtt)])
def test_captions_agree_with_the_wav_to_the_millisecond(session, exported, heard, fmt, parse):
    caps = parse(exported[fmt].read_text(encoding="utf-8"))
    groups = caption_groups(caps)
    speech = [e for e in session.timeline.events if e.kind == "speech"]
    assert len(groups) == len(heard["speech"]) == len(speech)
    for (start, end, text), (heard_start, heard_end), event in zip(groups, heard["speech"], speech):
        assert abs(start - heard_start / SAMPLE_RATE) <= 0.001
        assert abs(end - heard_end / SAMPLE_RATE) <= 0.001
        assert text.split() == event.text.split()
    assert len(caps) > len(groups), "the long intro line is split over several captions"


def test_json_agrees_with_the_wav(session, exported, heard):
    doc = json.loads(exported["json"].read_text(encoding="utf-8"))
    speech = [e for e in doc["events"] if e["kind"] == "speech"]
    assert len(speech) == len(heard["speech"])
    for event, (start, end) in zip(speech, heard["speech"]):
        assert abs(event["start"] - start / SAMPLE_RATE) <= 0.001
        assert abs(event["end"] - end / SAMPLE_RATE) <= 0.001
        assert abs(event["start_sample"] - start) <= 1
        assert abs(event["start_sample"] + event["length_samples"] - end) <= 1
    for kind in CHIME_HZ:
        times = [e["start"] for e in doc["events"] if e["kind"] == "chime" and e["part"] == kind]
        assert len(times) == len(heard[kind])
        assert all(abs(t - s / SAMPLE_RATE) <= 0.010 for t, (s, _) in zip(times, heard[kind]))
    _, params = read_wav_file(exported["wav"])
    assert doc["length_samples"] == params.nframes


def test_txt_times_agree_with_the_wav(session, exported, heard):
    lines = parse_txt(exported["txt"].read_text(encoding="utf-8"))
    spoken = [(t, text) for t, text in lines if not text.startswith(("(chime", "-- hold"))]
    events = [e for e in session.timeline.events if e.kind == "speech"]
    assert [text for _, text in spoken] == [e.text for e in events]
    for (seconds, _), (start, _), event in zip(spoken, heard["speech"], events):
        assert seconds == event.start // SAMPLE_RATE
        assert abs(seconds - start / SAMPLE_RATE) < 1  # the [mm:ss] second the audio starts in
    chimes = [(t, text) for t, text in lines if text.startswith("(chime")]
    expected = [(e.start // SAMPLE_RATE, f"(chime: {e.part.replace('_', ' ')})")
                for e in session.timeline.events if e.kind == "chime"]
    assert chimes == expected


# ---------------------------------------------------------------------------
# The WAV itself

def test_wav_header_length_and_level(session, exported):
    audio, params = read_wav_file(exported["wav"])
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, SAMPLE_RATE)
    assert params.nframes == len(audio) == session.timeline.length
    assert exported["wav"].stat().st_size == 44 + 2 * session.timeline.length
    # Nothing overlaps loudly and no clip passes -1 dBFS: every sound keeps its own level
    # (the live session's gain of 1), not raised to bring the loudest to -1 dBFS.
    assert loudest_sound(session) < PEAK_TARGET
    assert np.max(np.abs(audio.astype(np.int32))) == pytest.approx(full_scale(loudest_sound(session)), abs=1)


def test_wav_never_clips_when_a_loud_chime_rings_under_another_sound(tmp_path):
    # A 2 s hold: the 1.9 s hold-start chime still rings when the halfway chime starts.
    # (Speech never starts over a chime: the timeline keeps it clear.)
    loud_chimes = {kind: tone(1.9, hz, 0.9, decay=2.0) for kind, hz in CHIME_HZ.items()}
    session = synthetic_session(options=SessionOptions(hold=2.0), chimes=loud_chimes, amplitude=0.9)
    audible = [e for e in session.timeline.events if e.kind != "hold"]
    overlapping = [(a, b) for a in audible if a.kind == "chime" for b in audible
                   if b is not a and a.start < b.start < a.end]
    assert overlapping, "this test needs a chime still ringing when another sound starts"
    ringing, later = overlapping[0]
    offset = later.start - ringing.start
    later_clip = session.chimes[later.part] if later.kind == "chime" else session.speech[later.text]
    raw_peak = np.max(np.abs(session.chimes[ringing.part][offset:offset + 2000] + later_clip[:2000]))
    assert raw_peak > 1.2, "summed as is, the overlap would clip"

    path = tmp_path / "loud.wav"
    write_export(session, str(path))
    audio, _ = read_wav_file(path)
    peak = int(np.max(np.abs(audio.astype(np.int32))))
    assert peak == pytest.approx(full_scale(PEAK_TARGET), abs=1)
    assert peak < np.iinfo(np.int16).max
    # both sounds are in the audio there: mixed, not one replacing the other
    window = audio[later.start:later.start + 2048].astype(np.float64) * np.hanning(2048)
    spectrum = np.abs(np.fft.rfft(window))
    later_hz = CHIME_HZ[later.part] if later.kind == "chime" else SPEECH_HZ
    level = {hz: spectrum[int(round(hz * 2048 / SAMPLE_RATE))] for hz in (later_hz, CHIME_HZ[ringing.part])}
    assert min(level.values()) > 0.1 * max(level.values()), level


def test_wav_is_the_mixed_session_written_block_by_block(session, exported):
    audio, _ = read_wav_file(exported["wav"])
    whole = to_int16(render_session(session.timeline, session.speech, session.chimes))
    assert np.array_equal(audio, whole)


@pytest.mark.parametrize("hold", [None, 2.0])  # 2 s: a chime still rings when the next one starts
def test_16_bit_sounds_are_those_of_to_int16_with_any_threads_and_odd_samples(hold):
    loud_chimes = {kind: tone(1.9, hz, 0.9, decay=2.0) for kind, hz in CHIME_HZ.items()}
    session = synthetic_session(options=SessionOptions(hold=hold), chimes=loud_chimes, amplitude=0.9)

    def expected(speech, volume=1.0):
        return [(start, to_int16(sound)) for start, sound in
                session_sounds(session.timeline, speech, session.chimes, volume)]

    def made(speech, workers, volume=1.0):
        return list(session_pcm16(session.timeline, speech, session.chimes, volume, workers=workers))

    def same(a, b):
        return len(a) == len(b) and all(s == t and np.array_equal(x, y) for (s, x), (t, y) in zip(a, b))

    assert hold is None or any(len(seg.events) > 1 for seg in segments(session.timeline))
    for workers in (1, 2, 3):
        assert same(made(session.speech, workers), expected(session.speech))
        assert same(made(session.speech, workers, 0.3), expected(session.speech, 0.3))
    # A clip with NaN in it (the peak is then unknown): those samples are silence, as to_int16 makes them.
    odd = dict(session.speech)
    text = next(iter(odd))
    odd[text] = odd[text].copy()
    odd[text][100:200] = np.nan
    assert same(made(odd, 2), expected(odd))


def test_wav_export_writes_only_the_sounds(session, tmp_path, monkeypatch):
    # The silence between sounds is left to a seek (zeros, or holes in the file); what is
    # written is the sounds alone, and the file reads back as the whole session.
    written = []
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        written.append(FullDisk(real_fdopen(fd, *args, **kwargs), room=1 << 40))
        return written[-1]

    monkeypatch.setattr(os, "fdopen", fdopen)
    write_export(session, str(tmp_path / "s.wav"))
    monkeypatch.undo()
    sounds = sum(s.length for s in segments(session.timeline))
    assert written[0].written == 44 + 2 * sounds < 2 * session.timeline.length
    audio, params = read_wav_file(tmp_path / "s.wav")
    assert params.nframes == session.timeline.length
    assert np.array_equal(audio, to_int16(render_session(session.timeline, session.speech, session.chimes)))


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise here")
def test_wav_export_starts_the_writeback_as_it_goes_and_never_fails_for_it(session, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(export_audio._Writeback, "EVERY", 1 << 16)
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, offset, length, advice: calls.append((offset, length)))
    write_export(session, str(tmp_path / "a.wav"))
    assert len(calls) > 3
    assert calls[0][0] == 0 and all(a + n == b for (a, n), (b, _) in zip(calls, calls[1:]))  # each part once
    assert calls[-1][0] + calls[-1][1] <= 44 + 2 * session.timeline.length

    def refused(*args):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "posix_fadvise", refused)
    write_export(session, str(tmp_path / "b.wav"))
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_wav_progress_reports_samples_up_to_the_total(session, tmp_path):
    calls = []
    write_export(session, str(tmp_path / "p.wav"), progress=lambda done, total: calls.append((done, total)))
    total = session.timeline.length
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert len(calls) > 5, "progress comes block by block, not once at the end"
    dones = [done for done, _ in calls]
    assert dones == sorted(dones)


def test_volume_scales_the_wav(tmp_path):
    quiet = synthetic_session(options=SessionOptions(volume=0.5))
    path = tmp_path / "quiet.wav"
    write_export(quiet, str(path))
    audio, _ = read_wav_file(path)
    assert np.max(np.abs(audio.astype(np.int32))) == pytest.approx(full_scale(loudest_sound(quiet) * 0.5), abs=1)


# ---------------------------------------------------------------------------
# Format details

def test_pick_format_from_suffix_option_and_stdout():
    assert [pick_format(f"a.{fmt}", None) for fmt in FORMATS] == list(FORMATS)
    assert pick_format("Session.WAV", None) == "wav"
    assert pick_format("notes.markdown", None) == "md"
    assert pick_format("out.dat", "json") == "json"
    assert pick_format("a.wav", "SRT") == "srt"
    assert pick_format("-", None) == "txt"
    assert pick_format("-", "vtt") == "vtt"


@pytest.mark.parametrize("output, fmt, words", [
    ("session.flac", None, ["session.flac", "wav", "m4a", "json", "--format"]),
    ("session", None, ["no suffix", "--format"]),
    ("a.txt", "ogg", ["'ogg'", "wav, txt, md, srt, vtt, json"]),
    ("-", "wav", ["stdout", "file name"]),
])
def test_pick_format_refuses_with_a_useful_message(output, fmt, words):
    with pytest.raises(UsageError) as err:
        pick_format(output, fmt)
    assert all(word in str(err.value) for word in words), str(err.value)
    assert "\n" not in str(err.value)


def test_caption_time_formats():
    at = 3723 * SAMPLE_RATE + 10_090  # 01:02:03 and 457.6 ms
    assert caption_time(at, ",") == "01:02:03,458"
    assert caption_time(at, ".") == "01:02:03.458"
    assert caption_time(0, ",") == "00:00:00,000"
    assert caption_time(SAMPLE_RATE * 59 + SAMPLE_RATE - 1, ".") == "00:01:00.000"  # rounds up across a minute


def test_srt_and_vtt_cue_layout(session):
    srt = render_text(session, "srt")
    vtt = render_text(session, "vtt")
    assert vtt.startswith("WEBVTT\n\n")
    for caps in (parse_srt(srt), parse_vtt(vtt)):
        for start, end, lines in caps:
            assert end > start
            assert 1 <= len(lines) <= CAPTION_MAX_LINES
            assert all(len(line) <= CAPTION_LINE_CHARS for line in lines), lines
        assert [c[0] for c in caps] == sorted(c[0] for c in caps)


def test_a_long_utterance_becomes_consecutive_captions_spanning_it_exactly():
    start, end = 1000, 1000 + 9 * SAMPLE_RATE
    caps = split_caption(LONG_LINE, start, end)
    assert len(caps) >= 2
    assert caps[0].start == start and caps[-1].end == end
    assert all(a.end == b.start for a, b in zip(caps, caps[1:]))
    assert " ".join(" ".join(c.lines) for c in caps).split() == LONG_LINE.split()
    for cap in caps:
        assert len(cap.lines) <= CAPTION_MAX_LINES and all(len(l) <= CAPTION_LINE_CHARS for l in cap.lines)
        # time is shared out by length of text
        share = len(" ".join(cap.lines)) / sum(len(" ".join(c.lines)) for c in caps)
        assert abs((cap.end - cap.start) / (end - start) - share) < 0.02


def test_captions_keep_sentences_whole_where_they_fit():
    text = ("Bend your right knee toward your chest, slowly and gently. "
            "Loop the strap around the ball of the foot. Breathe.")
    caps = split_caption(text, 0, 1000)
    assert [" ".join(c.lines) for c in caps] == [
        "Bend your right knee toward your chest, slowly and gently.",
        "Loop the strap around the ball of the foot. Breathe."]
    # a sentence too long for one caption is cut after its comma, not mid-phrase
    long = "You will do three stretches on each side: leg up, leg to the side, and leg across the body."
    assert split_caption(long, 0, 1000)[0].lines == ("You will do three stretches on each side:",)


def test_a_sentence_ending_inside_a_quote_or_bracket_is_a_sentence_too():
    # Its end was not seen: the captions were cut in the middle of the next sentence, and one
    # caption ran across the pause between two sentences.
    quoted = 'Now say the word "stop." Then rest your leg down on the mat and breathe slowly for a while.'
    assert [" ".join(c.lines) for c in split_caption(quoted, 0, 1000)] == [
        'Now say the word "stop."', "Then rest your leg down on the mat and breathe slowly for a while."]
    bracketed = "(Rest your leg down on the mat.) Breathe slowly in and out for a while, and relax your jaw."
    assert [" ".join(c.lines) for c in split_caption(bracketed, 0, 1000)] == [
        "(Rest your leg down on the mat.)", "Breathe slowly in and out for a while, and relax your jaw."]


def test_short_text_is_one_caption_and_a_huge_word_gets_its_own_line():
    assert [c.lines for c in split_caption("Breathe.", 0, 100)] == [("Breathe.",)]
    two = split_caption("Draw your thigh bone into the hip socket while you stretch", 0, 100)
    assert len(two) == 1 and len(two[0].lines) == 2
    word = "x" * 60
    caps = split_caption(f"say {word} now", 0, 100)
    assert (word,) in [cap.lines for cap in caps]


def test_vtt_escapes_markup_characters():
    routine = replace(make_routine(), outro=("Rest <now> & smile.",))
    vtt = render_text(synthetic_session(routine), "vtt")
    assert "Rest &lt;now&gt; &amp; smile." in vtt
    assert "<now>" not in vtt


def test_srt_angle_brackets_are_not_read_as_tags_by_a_player(tmp_path):
    """FFmpeg's SubRip reader (what players such as mpv use), through PyAV, keeps every word."""
    routine = replace(make_routine(), outro=("Rest <slowly> & keep knee a < b > c.",))
    srt = render_text(synthetic_session(routine), "srt")
    said = "Rest \u2039slowly\u203a & keep knee a \u2039 b \u203a c."
    assert said in srt and "<" not in srt
    av = pytest.importorskip("av")
    (tmp_path / "s.srt").write_text(srt, encoding="utf-8")
    with av.open(str(tmp_path / "s.srt")) as container:
        read = [sub.ass.decode("utf-8") for packet in container.demux(container.streams.subtitles[0])
                for sub in packet.decode()]
    assert read and read[-1].endswith(said), read[-1]


def test_json_fields(session):
    options = SessionOptions(speed=1.25, voice="en-gb", engine="espeak", hold=None, start_side="left",
                             countdown=3)
    s = synthetic_session(options=options)
    doc = json.loads(render_text(s, "json"))
    assert doc["format"] == "coach-timeline" and doc["version"] == 2 and doc["sample_rate"] == SAMPLE_RATE
    assert doc["title"] == "Test *stretches*" and doc["credit"] == "Written for the coach tests"
    assert doc["length_samples"] == s.timeline.length
    assert doc["length_seconds"] == round(s.timeline.length / SAMPLE_RATE, 6)
    assert doc["settings"] == {"speed": 1.25, "voice": "en-gb", "engine": "espeak", "volume": 1.0,
                               "hold": None, "start_side": "left", "sides": ["left", "right"],
                               "countdown": 3, "guidance": "full", "minutes": None}
    assert doc["warnings"] == list(s.timeline.warnings) and doc["warnings"], "the 4 s hold drops its countdown"
    assert [sec["label"] for sec in doc["sections"]] == [sec.label for sec in s.timeline.sections]
    assert doc["sections"][0]["side"] == "left"
    assert len(doc["events"]) == len(s.timeline.events)
    for got, event in zip(doc["events"], s.timeline.events):
        assert got == {
            "start": round(event.start / SAMPLE_RATE, 6), "end": round(event.end / SAMPLE_RATE, 6),
            "duration": round(event.length / SAMPLE_RATE, 6), "start_sample": event.start,
            "length_samples": event.length, "kind": event.kind, "part": event.part, "text": event.text,
            "pose": event.pose, "side": event.side, "section": event.section,
            "words": [{"text": w.text, "start": round(w.start / SAMPLE_RATE, 6), "end": round(w.end / SAMPLE_RATE, 6),
                       "start_sample": w.start, "end_sample": w.end} for w in event.words],
        }
    hold = next(sec for sec in doc["sections"] if sec["pose"] == "Leg to the side")
    assert hold["hold_seconds"] == 12.0
    assert hold["hold_length_samples"] == 12 * SAMPLE_RATE


def test_every_json_field_is_documented(session):
    doc = json.loads(render_text(session, "json"))
    text = (REPO / "docs" / "export-formats.md").read_text(encoding="utf-8")
    table_rows = [line for line in text.splitlines() if line.startswith("| `")]
    documented = {name for row in table_rows for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}
    fields = set(doc) | set(doc["settings"]) | set(doc["sections"][0]) | set(doc["events"][0])
    assert fields - documented == set()
    for heading in ("## wav", "## txt", "## md", "## srt and vtt", "## json"):
        assert heading in text


def test_txt_header_holds_and_warnings(session):
    text = render_text(session, "txt")
    lines = text.splitlines()
    assert lines[0] == "Test *stretches*" and lines[1] == "Written for the coach tests"
    assert any(line.startswith("Note: ") and "countdown" in line for line in lines)
    holds = [line for line in lines if "-- hold" in line]
    expected = [f"[{e.start // SAMPLE_RATE // 60:02d}:{e.start // SAMPLE_RATE % 60:02d}] -- hold "
                f"{e.length // SAMPLE_RATE} s: {e.pose} ({e.side}) --"
                for e in session.timeline.events if e.kind == "hold"]
    assert holds == expected and len(holds) == 4


def test_md_shows_entities_and_tildes_as_written():
    from markdown_it import MarkdownIt  # rich's own dependency

    from coach.export.script import md_escape

    text = "Tom &amp; Jerry &copy; ~~not struck~~ <b> *x*"
    shown = MarkdownIt("commonmark").enable("strikethrough").renderInline(md_escape(text))
    assert shown == "Tom &amp;amp; Jerry &amp;copy; ~~not struck~~ &lt;b&gt; *x*"


def test_md_has_a_section_per_pose_and_side_and_every_line(session):
    md = render_text(session, "md")
    headings = [line for line in md.splitlines() if line.startswith("#")]
    assert headings == ["# Test \\*stretches\\*", "## Introduction", "## Leg up (right)",
                        "## Leg to the side (right)", "## Change sides: left", "## Leg up (left)",
                        "## Leg to the side (left)", "## Closing"]
    assert "*Written for the coach tests*" in md
    assert "Two poses on two sides." in md and "**Props:** strap, mat" in md
    assert "*Stretches: hamstrings*" in md
    # every spoken line appears, in order
    position = 0
    for event in session.timeline.events:
        if event.kind == "speech":
            position = md.index(event.text, position)
    side_hold = next(s for s in session.timeline.sections if s.label == "Leg to the side (right)")
    start = side_hold.hold_start // SAMPLE_RATE
    mid = (side_hold.hold_start + 6 * SAMPLE_RATE) // SAMPLE_RATE
    assert f"**Hold 12 s**, {start // 60:02d}:{start % 60:02d}" in md
    assert f"halfway chime at {mid // 60:02d}:{mid % 60:02d}" in md


def test_md_and_txt_of_a_german_routine(session):
    german = dataclasses.replace(session.routine, language="de")
    german_session = synthetic_session(german)
    md = render_text(german_session, "md")
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Einleitung" and headings[-1] == "## Ausklang"
    assert "## Seitenwechsel: left" in headings
    assert "**Hilfsmittel:** strap, mat" in md and "*Zielbereich: hamstrings*" in md
    assert "**Halten 12 s**" in md and "Ton zur Hälfte bei" in md and "Lösen:" in md
    assert md.startswith("# Test \\*stretches\\*") and "Dauer " in md
    for english in ("Introduction", "Closing", "Change sides", "Props", "Stretches", "Hold ", "halfway", "Release:"):
        assert english not in md, english
    # The plain script keeps its markers, which programs read, in every language.
    assert render_text(german_session, "txt") == render_text(synthetic_session(), "txt")


def test_routine_without_sides_intro_or_outro(tmp_path):
    routine = Routine(title="Plain", poses=(Pose("Child's pose", setup=("Kneel and fold forward.",), hold=6.0,
                                                 release=("Come up slowly.",)),), sides=())
    plain = synthetic_session(routine, SessionOptions())
    doc = json.loads(render_text(plain, "json"))
    assert doc["settings"]["start_side"] is None and doc["settings"]["sides"] == []
    assert [s["label"] for s in doc["sections"]] == ["Child's pose"]
    headings = [line for line in render_text(plain, "md").splitlines() if line.startswith("#")]
    assert headings == ["# Plain", "## Child's pose"]
    assert "-- hold 6 s: Child's pose --" in render_text(plain, "txt")
    assert len(parse_srt(render_text(plain, "srt"))) == 2
    for fmt in FORMATS:
        write_export(plain, str(tmp_path / f"plain.{fmt}"))
    assert len(list(tmp_path.iterdir())) == len(FORMATS)


def test_render_text_refuses_wav(session):
    with pytest.raises(UsageError):
        render_text(session, "wav")


# ---------------------------------------------------------------------------
# Files: overwrite, missing folder, read-only, disk full

def test_existing_file_needs_force_and_costs_no_work(session, tmp_path, monkeypatch):
    target = tmp_path / "s.wav"
    target.write_bytes(b"precious")
    with pytest.raises(ExportError, match="already exists.*--force"):
        check_output(str(target), None, False)

    def no_mixing(*args, **kwargs):
        raise AssertionError("the audio was mixed before the target was checked")

    monkeypatch.setattr(export_audio, "session_pcm16", no_mixing)
    with pytest.raises(ExportError, match="--force"):
        write_export(session, str(target))
    assert target.read_bytes() == b"precious"
    monkeypatch.undo()
    assert write_export(session, str(target), force=True) == "wav"
    _, params = read_wav_file(target)
    assert params.nframes == session.timeline.length
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.wav"]


def test_a_file_that_appears_just_before_the_rename_is_kept_without_force(session, tmp_path, monkeypatch):
    # Another export of the same name finishing between the last check and the rename: a
    # rename replaced its file (and both said "Wrote"); without --force the one there stays.
    from coach import files

    target = tmp_path / "s.txt"
    umask = files._umask

    def other_export_finishes() -> int:  # called after that check, before the file is named
        if not target.exists():
            target.write_text("the other export")
        return umask()

    monkeypatch.setattr(files, "_umask", other_export_finishes)
    with pytest.raises(ExportError, match="appeared while exporting.*--force"):
        write_export(session, str(target))
    assert target.read_text() == "the other export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.txt"]  # no temporary file left
    write_export(session, str(target), force=True)
    assert target.read_text(encoding="utf-8") == render_text(session, "txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.txt"]


def test_text_export_over_an_existing_file(session, tmp_path):
    target = tmp_path / "s.srt"
    target.write_text("old")
    with pytest.raises(ExportError):
        write_export(session, str(target))
    assert target.read_text() == "old"
    write_export(session, str(target), force=True)
    assert target.read_text(encoding="utf-8") == render_text(session, "srt")


def test_missing_folder_and_folder_as_target(session, tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        check_output(str(tmp_path / "nope" / "s.json"))
    with pytest.raises(ExportError, match="is a folder"):
        write_export(session, str(tmp_path), "txt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt, example", [(None, "session.wav"), ("txt", "session.txt"), ("markdown", "session.md"),
                                          ("JSON", "session.json"), ("nosuch", "session.wav")])
def test_a_folder_as_target_suggests_a_file_of_the_format_asked_for(tmp_path, fmt, example):
    # `coach export -o /tmp --format txt` suggested /tmp/session.wav.
    with pytest.raises(ExportError) as err:
        check_output(str(tmp_path), fmt)
    assert str(err.value) == f"{tmp_path} is a folder; give a file name, e.g. {tmp_path}{os.sep}{example}"


def test_a_device_a_pipe_or_a_link_to_one_is_never_replaced_even_with_force(session, tmp_path):
    # As root, `-o /dev/null --force` must not put a regular file where the device was.
    device = tmp_path / "null"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    pipe = tmp_path / "pipe.txt"
    os.mkfifo(pipe)
    link = tmp_path / "out.txt"
    link.symlink_to(device)
    for target, kind in ((device, "character device"), (pipe, "named pipe"), (link, "character device")):
        with pytest.raises(ExportError, match=kind):
            write_export(session, str(target), "txt", force=True)
    assert stat.S_ISCHR(os.stat(device).st_mode) and stat.S_ISFIFO(os.stat(pipe).st_mode) and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "out.txt", "pipe.txt"]


def test_force_through_a_link_replaces_the_file_it_points_to_and_keeps_the_link(session, tmp_path):
    real = tmp_path / "real.srt"
    real.write_text("old")
    link = tmp_path / "link.srt"
    link.symlink_to(real.name)
    with pytest.raises(ExportError, match="--force"):
        write_export(session, str(link))
    write_export(session, str(link), force=True)
    assert link.is_symlink() and real.read_text(encoding="utf-8") == render_text(session, "srt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.srt", "real.srt"]


@pytest.mark.parametrize("name, says", [("sub/", "sub/ is a folder"), ("x" * 300 + ".txt", "too long"),
                                        ("a\0b.txt", "NUL"), ("", "file name is empty"),
                                        ("file.txt/s.txt", "is a file, not a folder")])
def test_output_names_that_cannot_be_files_are_one_line_each(session, tmp_path, monkeypatch, name, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("keep")
    with pytest.raises(ExportError, match=says):
        write_export(session, name.replace("\\0", "\0"), "txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


@pytest.mark.parametrize("name", ["x" * 251 + ".srt", "é" * 123 + ".srt"])
def test_a_name_close_to_the_255_byte_limit_is_written(session, tmp_path, name):
    # The name is legal; its temporary file's name (".NAME.xxxxxxxx.part") must be too.
    write_export(session, str(tmp_path / name))
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert (tmp_path / name).read_text(encoding="utf-8") == render_text(session, "srt")


@pytest.mark.parametrize("force", [False, True])
def test_a_symlink_loop_as_the_output_is_one_line(session, tmp_path, force):
    (tmp_path / "a.srt").symlink_to("b.srt")
    (tmp_path / "b.srt").symlink_to("a.srt")
    with pytest.raises(ExportError, match="loops back on itself"):
        check_output(str(tmp_path / "a.srt"), force=force)
    with pytest.raises(ExportError, match="loops back on itself"):
        write_export(session, str(tmp_path / "a.srt"), force=force)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.srt", "b.srt"]


def test_read_only_folder_is_refused_before_any_work(session, tmp_path, monkeypatch):
    # Tests run as root, for whom every folder is writable: fake what os.access says.
    monkeypatch.setattr("coach.files.os.access", lambda path, mode: False)
    with pytest.raises(ExportError, match="not writable"):
        check_output(str(tmp_path / "s.wav"))
    with pytest.raises(ExportError, match="not writable"):
        write_export(session, str(tmp_path / "s.wav"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("force", [False, True])
def test_a_failing_rename_leaves_nothing_behind(session, tmp_path, monkeypatch, force):
    def refuse(src, dst):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    # Without --force the file is named by a hard link (a rename where links fail), with it by a rename.
    monkeypatch.setattr("coach.files.os.replace", refuse)
    monkeypatch.setattr("coach.files.os.link", refuse)
    with pytest.raises(ExportError, match="Permission denied"):
        write_export(session, str(tmp_path / "s.vtt"), force=force)
    assert list(tmp_path.iterdir()) == []


def test_a_part_file_a_killed_export_left_is_removed_by_the_next_export_of_that_name(session, tmp_path):
    # kill -9 (or a power cut) runs no clean-up: its .part stays, hidden, beside the output.
    old = tmp_path / ".s.vtt.ab12cd_9.part"
    running = tmp_path / ".s.vtt.zz99yy_0.part"  # another export of s.vtt, still writing
    other = tmp_path / ".other.vtt.ab12cd_9.part"  # another name's: not this export's business
    mine = tmp_path / ".s.vtt.notes.part"  # not one coach makes
    for path in (old, running, other, mine):
        path.write_bytes(b"half a file")
    hours_ago = time.time() - 2 * 3600
    for path in (old, other, mine):
        os.utime(path, (hours_ago, hours_ago))
    write_export(session, str(tmp_path / "s.vtt"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["s.vtt", running.name, other.name, mine.name])


def test_without_hard_links_a_new_file_is_still_named(session, tmp_path, monkeypatch):
    def no_links(src, dst):  # FAT, some network file systems
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr("coach.files.os.link", no_links)
    write_export(session, str(tmp_path / "s.vtt"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.vtt"]
    assert (tmp_path / "s.vtt").read_text(encoding="utf-8") == render_text(session, "vtt")


def export_to_full_disk(session, target: Path, room: int, monkeypatch) -> int:
    """Export to a disk that fills after `room` bytes: the one-line error it must give, and
    how many bytes went out before it."""
    disks = []
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        disks.append(FullDisk(real_fdopen(fd, *args, **kwargs), room))
        return disks[-1]

    monkeypatch.setattr(os, "fdopen", fdopen)
    with pytest.raises(ExportError, match="No space left") as err:
        write_export(session, str(target), force=True)
    monkeypatch.undo()
    assert "\n" not in str(err.value)
    assert disks, "the export never opened its file"
    return disks[0].written


@pytest.mark.parametrize("existing", [False, True])
def test_disk_full_mid_wav_leaves_no_partial_file(session, tmp_path, monkeypatch, existing):
    target = tmp_path / "s.wav"
    if existing:
        target.write_bytes(b"the old export")
    room = sum(s.length for s in segments(session.timeline))  # half the sounds fit
    written = export_to_full_disk(session, target, room, monkeypatch)
    assert written > 44, "the failure came in the middle of the audio"
    assert sorted(p.name for p in tmp_path.iterdir()) == (["s.wav"] if existing else [])
    if existing:
        assert target.read_bytes() == b"the old export"


# ---------------------------------------------------------------------------
# stdout

def test_text_to_stdout(session):
    out = io.StringIO()
    assert write_export(session, "-", stdout=out) == "txt"
    assert out.getvalue() == render_text(session, "txt")
    binary = io.TextIOWrapper(io.BytesIO(), encoding="ascii")  # UTF-8 whatever the locale
    routine = replace(make_routine(), outro=("Namasté, à bientôt.",))
    write_export(synthetic_session(routine), "-", "json", stdout=binary)
    assert json.loads(binary.buffer.getvalue().decode("utf-8"))["events"][-1]["text"] == "Namasté, à bientôt."


class Trickle(io.RawIOBase):
    """A raw stdout (python -u) that takes at most 100 bytes a call, as a pipe may."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk) -> int:
        self.data += bytes(chunk[:100])
        return min(len(chunk), 100)


def test_stdout_partial_writes_lose_nothing(session):
    raw = Trickle()
    write_export(session, "-", "md", stdout=io.TextIOWrapper(raw, encoding="utf-8", write_through=True))
    assert raw.data.decode("utf-8") == render_text(session, "md")
    assert len(raw.data) > 1000


def test_wav_to_stdout_is_refused(session):
    with pytest.raises(UsageError, match="file name"):
        write_export(session, "-", "wav", stdout=io.StringIO())


@pytest.mark.parametrize("reader, unbuffered", [("head -1", False), ("head -1", True), ("true", False)])
def test_stdout_closed_early_prints_no_traceback(tmp_path, reader, unbuffered):
    """`coach export -o - | head -1`: head leaves while a big export (over a 64 KiB pipe
    buffer) is still being written; `| true`: the reader is gone before a small export
    starts, so the error comes from the final flush (and again at exit, if not silenced)."""
    if reader == "true":
        session, fmt, pause = synthetic_session(), "txt", 0.5
        assert len(render_text(session, fmt)) < 8192  # fits the stdout buffer: fails on flush
    else:
        session, fmt, pause = synthetic_session(make_routine(extra_poses=40)), "json", 0
        assert len(render_text(session, fmt)) > 2 * 65536
    pickled = tmp_path / "session.pickle"
    pickled.write_bytes(pickle.dumps(session))
    script = ("import pickle, sys, time; from coach.export import write_export; "
              f"session = pickle.load(open({str(pickled)!r}, 'rb')); time.sleep({pause}); "
              f"write_export(session, '-', {fmt!r})")
    command = f"{sys.executable} -c {_quote(script)} | {reader}; exit ${{PIPESTATUS[0]}}"
    # python -u (PYTHONUNBUFFERED) writes stdout through a raw file: a different code path.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60,
                            cwd=REPO, env=env)
    assert result.stdout == ("{\n" if reader == "head -1" else "")
    assert result.stderr == ""
    assert result.returncode == 0


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


# ---------------------------------------------------------------------------
# Real speech and chimes (espeak-ng via build_session)

SHORT_ROUTINE = """
title = "Four second holds"
credit = "coach tests"
intro = ["Welcome."]
side_switch = ["Change to the {side} leg."]
outro = ["Done."]
[defaults]
hold = 4
sides = ["right", "left"]
[[poses]]
name = "Leg up"
setup = ["Leg up, {side} leg."]
release = "Release."
[[poses]]
name = "Leg to the side"
setup = "Open the {side} leg to the side."
release = "And back to the center."
"""


@pytest.fixture(scope="module")
def real_sessions(tmp_path_factory):
    from coach.routine import load_routine
    from coach.session import build_session

    cache = tmp_path_factory.mktemp("speech-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("COACH_CACHE_DIR", str(cache))
    try:
        yield {
            "short": build_session(load_routine_text(SHORT_ROUTINE, "short.toml")),
            "builtin": build_session(load_routine()),
        }
    finally:
        patch.undo()


def best_lag(audio: np.ndarray, clip: np.ndarray, at: int, search: int, length: int) -> tuple[int, float]:
    """Where `clip` really starts in `audio` near `at`: lag of the best normalised correlation."""
    ref = clip[:length].astype(np.float64)
    lo = max(0, at - search)
    window = audio[lo:at + search + len(ref)].astype(np.float64)
    dots = np.correlate(window, ref, mode="valid")
    energy = np.convolve(window ** 2, np.ones(len(ref)), mode="valid")
    score = dots / np.sqrt(np.maximum(energy, 1e-12) * np.dot(ref, ref))
    best = int(np.argmax(score))
    return lo + best - at, float(score[best])


@pytest.mark.parametrize("name", ["short", "builtin"])
def test_real_session_wav_chimes_and_speech_are_on_the_timeline(real_sessions, tmp_path, name):
    session = real_sessions[name]
    path = tmp_path / "real.wav"
    write_export(session, str(path))
    audio, params = read_wav_file(path)
    assert params.nframes == session.timeline.length
    peak = int(np.max(np.abs(audio.astype(np.int32))))
    # The gain is 1, as live: the speech keeps its own level, the same in every session.
    assert peak == pytest.approx(full_scale(loudest_sound(session)), abs=1) and peak < full_scale(PEAK_TARGET)

    events = session.timeline.audible()
    assert {e.part for e in events if e.kind == "chime"} == {"hold_start", "midpoint", "side_switch"}
    alone = [e for e in events if e.kind == "speech"
             and not any(o is not e and o.start < e.end and e.start < o.end for o in events)]
    assert alone and session.speech_pcm16
    for event in alone:  # each utterance is in the file exactly as the speech cache holds it
        np.testing.assert_array_equal(audio[event.start:event.end], session.speech_pcm16[event.text][:event.length])
    for event in events:
        clip = session.chimes[event.part] if event.kind == "chime" else session.speech[event.text]
        lag, score = best_lag(audio, clip, event.start, search=int(50 * ONE_MS),
                              length=min(len(clip), int(0.3 * SAMPLE_RATE)))
        assert score > 0.9, (event, score)
        limit = 10 * ONE_MS if event.kind == "chime" else ONE_MS
        assert abs(lag) <= limit, (event, lag)


@pytest.mark.parametrize("fmt", ["wav", "m4a", "srt"])
def test_an_export_makes_float_samples_only_of_speech_it_must_mix(tmp_path, monkeypatch, fmt):
    """The cached int16 clips are what an export writes: float32 samples (4 bytes a sample,
    130 MB for an hour) are made only of a clip that overlaps another sound."""
    from coach.export.encoded import have_pyav
    from coach.routine import load_routine
    from coach.session import build_session
    from coach.speech import clip as clip_module

    if fmt == "m4a" and not have_pyav():
        pytest.skip("PyAV is not installed")
    monkeypatch.setenv("COACH_CACHE_DIR", str(tmp_path / "cache"))
    build_session(load_routine_text(SHORT_ROUTINE, "short.toml"))  # fills the cache
    made = []
    real = clip_module.from_int16
    monkeypatch.setattr(clip_module, "from_int16", lambda pcm: made.append(len(pcm)) or real(pcm))
    session = build_session(load_routine_text(SHORT_ROUTINE, "short.toml"))  # from the cache
    write_export(session, str(tmp_path / f"out.{fmt}"))
    mixed = {e.text for s in segments(session.timeline) if len(s.events) > 1 for e in s.events if e.kind == "speech"}
    lengths = {text: len(session.speech_pcm16[text]) for text in mixed}
    assert len(session.speech_pcm16) > len(mixed)  # most lines are alone, so the test tells
    assert len(made) <= len(mixed) and all(n in lengths.values() for n in made), (made, lengths)
    # and asked for, they are exactly the cached samples / 32768
    text = next(iter(session.speech_pcm16))
    np.testing.assert_array_equal(session.speech[text], session.speech_pcm16[text] / np.float32(32768))


def test_real_session_captions_json_and_txt_match_the_timeline(real_sessions, tmp_path):
    session = real_sessions["builtin"]
    speech = [e for e in session.timeline.events if e.kind == "speech"]
    for fmt, parse in (("srt", parse_srt), ("vtt", parse_vtt)):
        caps = parse(render_text(session, fmt))
        for event in speech:  # each utterance's captions lie inside it and say it, in order
            mine = [c for c in caps if event.start_s - 0.0005 <= c[0] < event.end_s]
            assert mine and abs(mine[0][0] - event.start_s) <= 0.0005 and mine[-1][1] <= event.end_s + 0.0005
            assert " ".join(" ".join(lines) for _, _, lines in mine).split() == event.text.split()
            word_starts = [w.start / SAMPLE_RATE for w in event.words]
            assert all(min(abs(c[0] - t) for t in word_starts) <= 0.0005 for c in mine), "a caption starts on a word"
        assert len(caps) == sum(len([c for c in caps if e.start_s - 0.0005 <= c[0] < e.end_s]) for e in speech)
    doc = json.loads(render_text(session, "json"))
    assert [e["start_sample"] for e in doc["events"]] == [e.start for e in session.timeline.events]
    txt = parse_txt(render_text(session, "txt"))
    assert len(txt) == len(session.timeline.events)
    assert [t for t, _ in txt] == [e.start // SAMPLE_RATE for e in session.timeline.events]


def chime_onsets(audio: np.ndarray, chime: np.ndarray) -> list[int]:
    """Where a chime starts in the audio, found from the audio alone (no timeline): each start
    of a stretch of sound whose first 0.25 s matches the chime's waveform (normalised
    correlation over 0.9 within 5 ms of that start)."""
    length = int(0.25 * SAMPLE_RATE)
    onsets = []
    for first, _ in sound_runs(audio):
        lag, score = best_lag(audio, chime, first, search=int(5 * ONE_MS), length=length)
        if score > 0.9:
            onsets.append(first + lag)
    return onsets


def test_voice_speed_changes_speech_length_in_the_audio_but_not_the_holds(tmp_path):
    from coach.session import build_session

    hold = 4 * SAMPLE_RATE
    measured = {}
    for speed in (0.75, 1.0, 1.5):
        session = build_session(load_routine_text(SHORT_ROUTINE, "short.toml"), SessionOptions(speed=speed))
        path = tmp_path / f"speed-{speed}.wav"
        write_export(session, str(path))
        audio, _ = read_wav_file(path)
        starts = chime_onsets(audio, session.chimes["hold_start"])
        middles = chime_onsets(audio, session.chimes["midpoint"])
        assert len(starts) == len(middles) == 4
        runs = sound_runs(audio)
        for start, middle in zip(starts, middles):
            assert abs(middle - start - hold // 2) <= ONE_MS  # the halfway chime, exactly
            release = next(first for first, _ in runs if first > middle + SAMPLE_RATE)
            assert abs(release - start - hold) <= 15 * ONE_MS  # the release line ends the hold on time
        # speech is what sounds outside the chimes: everything heard minus the chimes' own runs
        chime_samples = sum(end - first for first, end in runs
                            if any(abs(first - at) <= 5 * ONE_MS for at in starts + middles))
        measured[speed] = sum(end - first for first, end in runs) - chime_samples
    assert measured[0.75] > 1.15 * measured[1.0] and measured[1.5] < 0.85 * measured[1.0], measured
