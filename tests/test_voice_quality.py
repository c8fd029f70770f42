"""How the session sounds, with every installed speech engine: measured in the audio itself.

Each test runs once per engine. Piper's runs are skipped, with the reason, when the
`natural` extra is not installed; espeak-ng is installed by `make test`.

The clips under test are every text of the built-in routine (with a spoken countdown,
so one-word utterances are covered too), as `synthesize_all` returns them.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from coach import dsp
from coach.speech import piper as piper_engine
from coach.audio import SAMPLE_RATE, peak_db
from coach.chimes import load_chimes
from coach.routine import load_routine
from coach.session import SessionOptions, build_session
from coach.speech import SpeechSettings, get_engine, synthesize, synthesize_all
from coach.timeline import TimelineOptions, spoken_texts

DATA = Path(__file__).resolve().parent / "data"
PIPER_SKIP = "piper-tts not installed: pip install 'coach[natural]'"
ENGINES = [
    pytest.param("espeak", id="espeak"),
    pytest.param(
        "piper", id="piper", marks=pytest.mark.skipif(piper_engine.missing_reason() is not None, reason=PIPER_SKIP)
    ),
]
TARGET_DB = inspect.signature(dsp.normalize_loudness).parameters["target_db"].default

# What "silence" means at the ends of a clip: quieter than this, relative to the clip's peak.
SILENCE_BELOW_PEAK_DB = -45.0
MAX_EDGE_SILENCE_MS = 20.0
LOUDNESS_TOLERANCE_DB = 1.0
# A click: the first or last sample away from zero, or a big step right at the edge.
EDGE_SAMPLE_MAX = 1e-3
EDGE_MS = 5.0
EDGE_STEP_MAX = 0.1
# Chimes sit under the voice: at least this far below its typical (median) peak, never
# above the peak of even the quietest utterance, and not so far down that they are lost.
CHIME_UNDER_TYPICAL_SPEECH_DB = 4.0
CHIME_MAX_UNDER_SPEECH_DB = 15.0


@pytest.fixture(scope="module")
def routine_texts() -> list[str]:
    return spoken_texts(load_routine(None), TimelineOptions(countdown=3))


@pytest.fixture(scope="module")
def routine_clips(routine_texts, speech_cache_dir):
    """engine -> {text: polished clip}, synthesized at most once per engine for this module."""
    found: dict[str, dict[str, np.ndarray]] = {}

    def clips(engine: str) -> dict[str, np.ndarray]:
        if engine not in found:
            with pytest.MonkeyPatch.context() as patch:  # never the user's cache, even in a module fixture
                patch.setenv("COACH_CACHE_DIR", str(speech_cache_dir))
                found[engine] = synthesize_all(routine_texts, SpeechSettings(engine=engine))
        return found[engine]

    return clips


def edge_silence_ms(clip: np.ndarray) -> tuple[float, float]:
    """Milliseconds of silence (SILENCE_BELOW_PEAK_DB under the peak) at the start and at the end."""
    loud = np.flatnonzero(np.abs(clip) >= np.abs(clip).max() * 10 ** (SILENCE_BELOW_PEAK_DB / 20))
    return 1000 * loud[0] / SAMPLE_RATE, 1000 * (len(clip) - 1 - loud[-1]) / SAMPLE_RATE


@pytest.mark.parametrize("engine", ENGINES)
def test_raw_engine_output_has_silent_ends_to_trim(engine):
    # Guards the next test: without trimming, clips would fail it.
    raw = get_engine(engine).render("Breathe out slowly, and let your shoulders soften.", None, 1.0).samples
    lead, tail = edge_silence_ms(raw)
    assert max(lead, tail) > 3 * MAX_EDGE_SILENCE_MS


@pytest.mark.parametrize("engine", ENGINES)
def test_every_utterance_is_trimmed(engine, routine_clips):
    for text, clip in routine_clips(engine).items():
        lead, tail = edge_silence_ms(clip)
        assert lead <= MAX_EDGE_SILENCE_MS and tail <= MAX_EDGE_SILENCE_MS, f"{text!r}: {lead:.0f} ms / {tail:.0f} ms"


@pytest.mark.parametrize("engine", ENGINES)
def test_every_utterance_is_at_the_target_loudness(engine, routine_clips):
    off = {text: dsp.voiced_rms_db(clip) - TARGET_DB for text, clip in routine_clips(engine).items()}
    misses = {text[:50]: round(db, 2) for text, db in off.items() if abs(db) > LOUDNESS_TOLERANCE_DB}
    assert not misses, f"{len(misses)} of {len(off)} utterances more than {LOUDNESS_TOLERANCE_DB} dB from {TARGET_DB} dB"


@pytest.mark.parametrize("engine", ENGINES)
def test_no_clicks_at_clip_edges(engine, routine_clips):
    edge = dsp.samples(EDGE_MS)
    for text, clip in routine_clips(engine).items():
        assert abs(clip[0]) <= EDGE_SAMPLE_MAX and abs(clip[-1]) <= EDGE_SAMPLE_MAX, text
        for part in (np.concatenate([[0.0], clip[:edge]]), np.concatenate([clip[-edge:], [0.0]])):
            assert np.abs(np.diff(part)).max() <= EDGE_STEP_MAX, text


@pytest.mark.parametrize("engine", ENGINES)
def test_chimes_sit_under_the_voice(engine, routine_clips):
    speech_peaks = [peak_db(clip) for clip in routine_clips(engine).values()]
    typical, quietest = float(np.median(speech_peaks)), min(speech_peaks)
    for kind, chime in load_chimes().items():
        chime_peak = peak_db(chime)
        assert chime_peak <= typical - CHIME_UNDER_TYPICAL_SPEECH_DB, kind
        assert chime_peak < quietest, kind
        assert chime_peak >= typical - CHIME_MAX_UNDER_SPEECH_DB, kind


@pytest.mark.parametrize("engine", ENGINES)
def test_speed_changes_the_length_of_speech(engine):
    text = "Loop the strap around the ball of your right foot."
    normal = len(synthesize(text, SpeechSettings(engine=engine, speed=1.0)))
    slower = len(synthesize(text, SpeechSettings(engine=engine, speed=0.75)))
    faster = len(synthesize(text, SpeechSettings(engine=engine, speed=1.5)))
    assert slower > normal * 1.15
    assert faster < normal * 0.8


@pytest.mark.parametrize("speed", [0.75, 1.0, 1.5])
@pytest.mark.parametrize("engine", ENGINES)
def test_a_hold_is_exact_whichever_engine_speaks(engine, speed):
    routine = load_routine(DATA / "short.toml")
    session = build_session(routine, SessionOptions(engine=engine, speed=speed))
    hold_seconds = routine.poses[0].hold
    hold_length, half = round(hold_seconds * SAMPLE_RATE), round(hold_seconds / 2 * SAMPLE_RATE)
    events = session.timeline.events
    holds = [e for e in events if e.kind == "hold"]
    assert len(holds) == len(routine.poses) * len(routine.sides)
    for hold in holds:
        assert hold.length == hold_length
        at = {e.text: e.start for e in events if e.kind == "chime" and e.section == hold.section}
        assert at["hold_start"] == hold.start
        assert at["midpoint"] == hold.start + half
        release = next(e for e in events if e.part == "release" and e.section == hold.section)
        assert release.start == hold.end
        # the voice is silent through the hold: no speech starts or ends inside it
        for e in events:
            if e.kind == "speech":
                assert e.end <= hold.start or e.start >= hold.end, e.text


def test_engine_list_covers_every_engine_the_settings_accept():
    from coach.settings import ENGINES as SETTING_ENGINES
    from coach.speech import engine_names

    assert sorted(SETTING_ENGINES) == engine_names()
    assert {p.values[0] for p in ENGINES} == set(engine_names())

