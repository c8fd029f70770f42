"""The built-in chimes, their generator script, and routine-supplied chimes."""

from __future__ import annotations

import importlib.util
import wave
from pathlib import Path

import numpy as np
import pytest

from coach import chimes as chimes_module
from coach.audio import SAMPLE_RATE, db_to_gain, peak_db, write_wav
from coach.chimes import CHIME_KINDS, CHIME_PEAK_DB, MAX_CHIME_SECONDS, builtin_sounds_dir, load_chimes
from coach.errors import ChimeError

REPO_SOUNDS = Path(__file__).resolve().parent.parent / "sounds"


def make_chimes_module():
    spec = importlib.util.spec_from_file_location("make_chimes", REPO_SOUNDS / "make_chimes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(samples))


def tone(path: Path, freq: float, seconds: float, amp: float = 0.5) -> Path:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    write_wav(path, amp * np.sin(2 * np.pi * freq * t))
    return path


def test_kinds_match_the_routine_loader():
    from coach.routine import CHIME_KINDS as routine_kinds

    assert CHIME_KINDS == routine_kinds


def test_builtin_sounds_dir_holds_every_chime():
    for kind in CHIME_KINDS:
        assert (builtin_sounds_dir() / f"{kind}.wav").is_file()


def test_committed_wavs_are_what_the_script_generates_now(tmp_path):
    written = make_chimes_module().generate(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{kind}.wav" for kind in CHIME_KINDS)
    for path in written:
        committed = REPO_SOUNDS / path.name
        assert committed.read_bytes() == path.read_bytes(), f"run `make chimes`: {committed} is stale"


@pytest.mark.parametrize("kind", CHIME_KINDS)
def test_committed_wavs_are_short_normalised_speech_rate_16_bit(kind):
    with wave.open(str(REPO_SOUNDS / f"{kind}.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SAMPLE_RATE)
        raw = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768
    assert len(raw) / SAMPLE_RATE < 2.0
    assert peak_db(raw) == pytest.approx(-1.0, abs=0.1)
    # A soft attack (a few ms, not a click): the first half millisecond stays near silence.
    assert np.max(np.abs(raw[: SAMPLE_RATE // 2000])) < 0.05
    # ... and it ends in silence rather than being cut off.
    assert np.max(np.abs(raw[-20:])) < 0.001


def test_builtin_chimes_are_distinct_short_and_level_set():
    loaded = load_chimes()
    assert tuple(loaded) == CHIME_KINDS
    for kind, clip in loaded.items():
        assert clip.dtype == np.float32 and clip.ndim == 1
        assert 0.2 < len(clip) / SAMPLE_RATE <= MAX_CHIME_SECONDS
        assert peak_db(clip) == pytest.approx(CHIME_PEAK_DB, abs=0.5), kind
        assert clip[0] == 0 and abs(clip[-1]) < 1e-3  # faded edges
    pitches = sorted(dominant_hz(clip) for clip in loaded.values())
    assert all(high - low > 100 for low, high in zip(pitches, pitches[1:])), pitches


def test_side_switch_is_a_rising_pair():
    clip = load_chimes()["side_switch"]
    first, second = clip[: int(0.2 * SAMPLE_RATE)], clip[int(0.3 * SAMPLE_RATE): int(0.8 * SAMPLE_RATE)]
    assert dominant_hz(second) > dominant_hz(first) * 1.3


def test_custom_chime_replaces_exactly_its_kind(tmp_path):
    builtin = load_chimes()
    custom = load_chimes({"midpoint": tone(tmp_path / "bell.wav", 3000, 0.5)})
    assert dominant_hz(custom["midpoint"]) == pytest.approx(3000, abs=5)
    assert dominant_hz(builtin["midpoint"]) != pytest.approx(3000, abs=5)
    for kind in ("hold_start", "side_switch"):
        np.testing.assert_array_equal(custom[kind], builtin[kind])


@pytest.mark.parametrize("amp_db", [0.0, -30.0])
def test_custom_chime_is_level_set_and_faded(tmp_path, amp_db):
    path = tmp_path / "flat.wav"
    write_wav(path, np.full(SAMPLE_RATE // 2, db_to_gain(amp_db)))  # a DC block: worst case for clicks
    clip = load_chimes({"hold_start": path})["hold_start"]
    assert peak_db(clip) == pytest.approx(CHIME_PEAK_DB, abs=0.5)
    fade = int(0.005 * SAMPLE_RATE)
    assert clip[0] == 0 and clip[-1] < 1e-3
    assert np.all(np.diff(clip[:fade]) > 0)
    assert peak_db(clip[fade:-fade]) == pytest.approx(CHIME_PEAK_DB, abs=0.01)


def test_custom_chime_error_names_kind_and_file(tmp_path):
    path = tmp_path / "bell.mp3"
    path.write_bytes(b"ID3\x04\x00" + bytes(100))
    with pytest.raises(ChimeError) as caught:
        load_chimes({"midpoint": path})
    message = str(caught.value)
    assert message.startswith(f"chimes.midpoint: {path} is not a WAV file")


def test_custom_chime_longer_than_the_limit_is_rejected(tmp_path):
    path = tone(tmp_path / "long.wav", 440, MAX_CHIME_SECONDS + 0.5)
    with pytest.raises(ChimeError) as caught:
        load_chimes({"side_switch": path})
    message = str(caught.value)
    assert message.startswith(f"chimes.side_switch: {path} is 2.50 s long")
    assert f"at most {MAX_CHIME_SECONDS:g} s" in message and "trim" in message


def test_silent_custom_chime_is_rejected(tmp_path):
    path = tmp_path / "quiet.wav"
    write_wav(path, np.zeros(1000))
    with pytest.raises(ChimeError, match=r"chimes.hold_start: .*quiet.wav is silent"):
        load_chimes({"hold_start": path})


def test_unknown_kind_is_rejected(tmp_path):
    with pytest.raises(ChimeError, match="unknown chime kind 'hodl_start'"):
        load_chimes({"hodl_start": tone(tmp_path / "a.wav", 440, 0.2)})


def test_missing_builtin_chime_says_how_to_restore_it(tmp_path, monkeypatch):
    monkeypatch.setattr(chimes_module, "builtin_sounds_dir", lambda: tmp_path)
    with pytest.raises(ChimeError) as caught:
        load_chimes()
    message = str(caught.value)
    assert message.startswith("built-in chime hold_start: ")
    assert str(tmp_path / "hold_start.wav") in message and "make chimes" in message
