"""coach.dsp on synthetic signals whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from coach import dsp
from coach.audio import SAMPLE_RATE


def tone(seconds: float, db: float = -10.0, freq: float = 220.0) -> np.ndarray:
    """A sine whose peak is `db` dBFS."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (10 ** (db / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


def edge_silence_ms(x: np.ndarray, below_peak_db: float = -45.0) -> tuple[float, float]:
    """Milliseconds before the first and after the last sample louder than `below_peak_db` re peak."""
    loud = np.flatnonzero(np.abs(x) >= np.abs(x).max() * 10 ** (below_peak_db / 20))
    return 1000 * loud[0] / SAMPLE_RATE, 1000 * (len(x) - 1 - loud[-1]) / SAMPLE_RATE


def test_trim_silence_keeps_only_a_short_margin():
    clip = np.concatenate([silence(0.06), tone(0.5), silence(0.48)])
    trimmed = dsp.trim_silence(clip)
    lead, tail = edge_silence_ms(trimmed)
    assert lead <= 20 and tail <= 20
    assert len(trimmed) == pytest.approx(SAMPLE_RATE * 0.52, abs=SAMPLE_RATE * 0.002)  # tone + 2 x 10 ms


def test_trim_silence_works_on_a_quiet_clip_and_leaves_the_input_alone():
    clip = np.concatenate([silence(0.2), tone(0.3, db=-40), silence(0.2)])
    original = clip.copy()
    trimmed = dsp.trim_silence(clip)
    assert len(trimmed) < 0.4 * SAMPLE_RATE
    assert np.array_equal(clip, original)


def test_trim_silence_of_silence_is_empty():
    assert dsp.trim_silence(silence(0.5)).size == 0
    assert dsp.trim_silence(np.zeros(0, np.float32)).size == 0


def test_rms_db_of_known_signals():
    assert dsp.rms_db(tone(1.0, db=0.0)) == pytest.approx(-3.01, abs=0.02)  # a full-scale sine
    assert dsp.rms_db(np.full(100, 0.1, np.float32)) == pytest.approx(-20.0, abs=1e-4)
    assert dsp.rms_db(silence(0.1)) == float("-inf")
    assert dsp.rms_db(np.zeros(0, np.float32)) == float("-inf")


def test_voiced_rms_ignores_pauses_between_words():
    words = tone(0.4, db=-10)
    with_pauses = np.concatenate([words, silence(1.0), words, silence(1.0)])
    assert dsp.voiced_rms_db(with_pauses) == pytest.approx(dsp.rms_db(words), abs=0.1)
    assert dsp.rms_db(with_pauses) < dsp.rms_db(words) - 3  # the plain RMS would be fooled


@pytest.mark.parametrize("level_db", [-40.0, -20.0, -3.0])
def test_normalize_loudness_reaches_the_target(level_db):
    clip = np.concatenate([tone(0.5, db=level_db), silence(0.3), tone(0.5, db=level_db, freq=330)])
    out = dsp.normalize_loudness(clip, target_db=-20.0)
    assert out.dtype == np.float32
    assert dsp.voiced_rms_db(out) == pytest.approx(-20.0, abs=0.1)


def test_normalize_loudness_never_lets_the_peak_pass_minus_1_dbfs():
    clicks = np.zeros(SAMPLE_RATE, np.float32)
    clicks[::2205] = 0.05  # sparse spikes: a huge crest factor
    out = dsp.normalize_loudness(clicks, target_db=-20.0)
    assert dsp.peak_db(out) == pytest.approx(dsp.PEAK_CEILING_DB, abs=0.01)
    assert dsp.voiced_rms_db(out) < -20.0 - 1  # quieter than the target rather than clipped


def test_normalize_loudness_of_silence_stays_silent():
    assert not np.any(dsp.normalize_loudness(silence(0.2)))


def test_fade_edges_removes_the_click_of_a_hard_cut():
    clip = np.full(SAMPLE_RATE // 2, 0.8, np.float32)  # starts and ends with a jump to 0.8
    faded = dsp.fade_edges(clip, ms=5)
    assert abs(faded[0]) < 1e-3 and abs(faded[-1]) < 1e-3
    fade = dsp.samples(5)
    assert np.max(np.abs(np.diff(faded[: fade + 1]))) < 0.8 / fade * 2  # a ramp, not a step
    assert np.array_equal(faded[fade:-fade], clip[fade:-fade])  # the middle is untouched
    assert np.array_equal(clip, np.full_like(clip, 0.8))


def test_fade_edges_on_a_clip_shorter_than_two_fades():
    faded = dsp.fade_edges(np.ones(50, np.float32), ms=5)
    assert len(faded) == 50 and abs(faded[0]) < 1e-3 and abs(faded[-1]) < 1e-3


def test_polish_speech_trims_levels_and_fades():
    raw = np.concatenate([silence(0.06), tone(0.3, db=-6), silence(0.1), tone(0.4, db=-12, freq=180), silence(0.48)])
    out = dsp.polish_speech(raw)
    lead, tail = edge_silence_ms(out)
    assert lead <= 20 and tail <= 20
    assert dsp.voiced_rms_db(out) == pytest.approx(dsp.SPEECH_LOUDNESS_DB, abs=1.0)
    assert abs(out[0]) < 1e-3 and abs(out[-1]) < 1e-3


def test_polish_speech_of_silence_is_empty():
    assert dsp.polish_speech(silence(0.3)).size == 0
