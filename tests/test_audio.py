"""WAV reading/writing and the mixing helpers in coach.audio.

Test WAVs are built here, byte by byte or with the stdlib `wave` module, so every
expected sample value is known exactly.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import struct
import subprocess
import wave

import numpy as np
import pytest

from coach.audio import (
    MAX_WAV_BYTES,
    SAMPLE_RATE,
    db_to_gain,
    fade_edges,
    mix_into,
    peak_db,
    read_wav,
    resample,
    to_int16,
    write_wav,
)
from coach.errors import ChimeError

PCM, FLOAT, ADPCM, EXTENSIBLE = 0x0001, 0x0003, 0x0002, 0xFFFE
GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"  # KSDATAFORMAT_SUBTYPE_* suffix


def pcm_bytes(frames: np.ndarray, width: int) -> bytes:
    """Integer frames (n, channels) as little-endian PCM of `width` bytes per sample."""
    flat = np.asarray(frames).reshape(-1)
    if width == 1:
        return flat.astype(np.uint8).tobytes()
    if width == 3:
        return b"".join(int(v).to_bytes(3, "little", signed=True) for v in flat)
    return flat.astype(f"<i{width}").tobytes()


def write_pcm(path, frames, rate: int, width: int) -> None:
    frames = np.asarray(frames)
    if frames.ndim == 1:
        frames = frames[:, None]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(frames.shape[1])
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(pcm_bytes(frames, width))


def riff(tag: int, channels: int, rate: int, bits: int, data: bytes, *, extensible_tag: int | None = None) -> bytes:
    """A hand-made RIFF/WAVE file, for format tags the stdlib cannot write."""
    block = channels * ((bits + 7) // 8)
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    if extensible_tag is not None:
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", extensible_tag) + GUID_TAIL
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def sine(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)


# --- read_wav: every accepted format gives exactly the expected samples ---------------


def test_reads_16_bit_mono_exactly(tmp_path):
    path = tmp_path / "a.wav"
    write_pcm(path, [0, 16384, -16384, 32767, -32768], SAMPLE_RATE, 2)
    got = read_wav(path)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [0, 0.5, -0.5, 32767 / 32768, -1])


def test_reads_8_bit_as_unsigned(tmp_path):
    path = tmp_path / "a.wav"
    write_pcm(path, [128, 255, 0, 192, 64], SAMPLE_RATE, 1)
    np.testing.assert_array_equal(read_wav(path), [0, 127 / 128, -1, 0.5, -0.5])


def test_reads_24_bit_with_sign(tmp_path):
    path = tmp_path / "a.wav"
    write_pcm(path, [0, 1 << 22, -(1 << 22), (1 << 23) - 1, -(1 << 23), -1], SAMPLE_RATE, 3)
    expected = np.array([0, 0.5, -0.5, ((1 << 23) - 1) / (1 << 23), -1, -1 / (1 << 23)], dtype=np.float32)
    np.testing.assert_array_equal(read_wav(path), expected)


def test_reads_32_bit(tmp_path):
    path = tmp_path / "a.wav"
    write_pcm(path, [0, 1 << 30, -(1 << 30), -(1 << 31)], SAMPLE_RATE, 4)
    np.testing.assert_array_equal(read_wav(path), [0, 0.5, -0.5, -1])


def test_stereo_is_averaged_to_mono(tmp_path):
    path = tmp_path / "a.wav"
    write_pcm(path, [[16384, 0], [0, -16384], [8192, 8192]], SAMPLE_RATE, 2)
    np.testing.assert_array_equal(read_wav(path), [0.25, -0.25, 0.25])


def test_extensible_multichannel_pcm_is_accepted(tmp_path):
    # What sox writes for more than two channels; Python 3.11's wave module refuses it.
    path = tmp_path / "quad.wav"
    frames = np.array([[16384, 16384, 0, 0], [-32768, 0, 0, 0]])
    path.write_bytes(riff(EXTENSIBLE, 4, SAMPLE_RATE, 16, pcm_bytes(frames, 2), extensible_tag=PCM))
    np.testing.assert_array_equal(read_wav(path), [0.25, -0.25])


@pytest.mark.parametrize("rate", [44100, 96000, 11025])
def test_other_rates_are_resampled(tmp_path, rate):
    path = tmp_path / "a.wav"
    original = np.round(sine(440, 0.5, rate) * 32767)
    write_pcm(path, original, rate, 2)
    got = read_wav(path)
    assert len(got) == round(len(original) * SAMPLE_RATE / rate)
    inner = slice(200, len(got) - 200)  # the filter ramps in and out at the very edges
    np.testing.assert_allclose(got[inner], sine(440, len(got) / SAMPLE_RATE, SAMPLE_RATE)[inner], atol=0.01)


def test_downsampling_removes_tones_above_the_new_nyquist(tmp_path):
    # Without a low-pass, a 15 kHz tone at 96 kHz would fold back to 7050 Hz at full level.
    path = tmp_path / "a.wav"
    write_pcm(path, np.round(sine(15000, 0.5, 96000) * 32767), 96000, 2)
    got = read_wav(path)
    assert np.sqrt(np.mean(got[200:-200] ** 2)) < 0.005


# --- read_wav: every rejection is a one-line ChimeError naming the file ---------------


def _float_wav(path):
    path.write_bytes(riff(FLOAT, 1, SAMPLE_RATE, 32, np.zeros(100, "<f4").tobytes()))


def _adpcm_wav(path):
    path.write_bytes(riff(ADPCM, 1, SAMPLE_RATE, 4, bytes(256)))


def _extensible_float_wav(path):
    path.write_bytes(riff(EXTENSIBLE, 2, SAMPLE_RATE, 32, bytes(800), extensible_tag=FLOAT))


def _no_frames(path):
    write_pcm(path, np.zeros((0, 1), int), SAMPLE_RATE, 2)


def _too_long(path):
    write_pcm(path, np.zeros(11 * SAMPLE_RATE, int), SAMPLE_RATE, 2)


def _too_big(path):
    write_pcm(path, np.zeros(100, int), SAMPLE_RATE, 2)
    with open(path, "r+b") as f:
        f.truncate(MAX_WAV_BYTES + 2**20)  # sparse: costs no disk


def _cut_in_data(path):
    write_pcm(path, np.arange(1000), SAMPLE_RATE, 2)
    path.write_bytes(path.read_bytes()[:-500])


def _cut_in_header(path):
    write_pcm(path, np.arange(1000), SAMPLE_RATE, 2)
    path.write_bytes(path.read_bytes()[:30])


REJECTIONS = {
    "missing": (lambda p: None, ["does not exist"]),
    "folder": (lambda p: p.mkdir(), ["is a folder"]),
    "text renamed": (lambda p: p.write_text("hello, not audio\n"), ["is not a WAV file", "sox"]),
    "mp3 renamed": (lambda p: p.write_bytes(b"ID3\x03\x00" + bytes(200)), ["not a WAV file", "MP3", "sox -t mp3"]),
    "float": (_float_wav, ["compressed/non-PCM", "float", "sox", "-b 16"]),
    "adpcm": (_adpcm_wav, ["compressed/non-PCM", "ADPCM", "sox"]),
    "extensible float": (_extensible_float_wav, ["compressed/non-PCM", "float"]),
    "zero bytes": (lambda p: p.write_bytes(b""), ["empty file"]),
    "no frames": (_no_frames, ["no audio"]),
    "too long": (_too_long, ["11.0 s long", "10 s limit", "trim"]),
    "too big": (_too_big, ["20 MB limit"]),
    "cut in data": (_cut_in_data, ["truncated"]),
    "cut in header": (_cut_in_header, ["truncated"]),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejects_unusable_files_with_a_one_line_message(tmp_path, case):
    make, phrases = REJECTIONS[case]
    path = tmp_path / "my chime.wav"
    make(path)
    with pytest.raises(ChimeError) as caught:
        read_wav(path)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message
    for phrase in phrases:
        assert phrase in message


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read any file")
def test_rejects_unreadable_file(tmp_path):
    path = tmp_path / "a.wav"
    write_pcm(path, [0, 1], SAMPLE_RATE, 2)
    path.chmod(0)
    with pytest.raises(ChimeError, match="permission denied"):
        read_wav(path)


# --- write_wav and helpers --------------------------------------------------------------


def test_write_then_read_round_trips(tmp_path):
    samples = sine(1000, 0.1, SAMPLE_RATE, amp=0.9).astype(np.float32)
    write_wav(tmp_path / "a.wav", samples)
    # Only 16-bit rounding is lost: half a step.
    np.testing.assert_allclose(read_wav(tmp_path / "a.wav"), samples, atol=0.5 / 32768 + 1e-9)


def test_write_wav_clips_instead_of_wrapping():
    buffer = io.BytesIO()
    write_wav(buffer, np.array([1.5, -1.5, 0.25, 1.0000001], dtype=np.float32), rate=44100)
    buffer.seek(0)
    with wave.open(buffer) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 44100)
        raw = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    np.testing.assert_array_equal(raw, [32767, -32768, 8192, 32767])


def test_write_wav_refuses_multichannel_arrays(tmp_path):
    with pytest.raises(ValueError):
        write_wav(tmp_path / "a.wav", np.zeros((10, 2)))


def test_to_int16_clips_scales_and_silences_nan():
    got = to_int16(np.array([0.0, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, np.nan, 1 / 32768]))
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, [0, 16384, -16384, 32767, -32768, 32767, -32768, 0, 1])


def test_mix_into_adds_in_place_with_gain():
    buffer = np.ones(6, dtype=np.float32)
    mix_into(buffer, np.array([1.0, 2.0], dtype=np.float32), 2, gain=0.5)
    np.testing.assert_array_equal(buffer, [1, 1, 1.5, 2, 1, 1])


def test_mix_into_truncates_at_both_ends():
    buffer = np.zeros(5, dtype=np.float32)
    clip = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    mix_into(buffer, clip, 3)
    mix_into(buffer, clip, -2)
    np.testing.assert_array_equal(buffer, [3, 0, 0, 1, 2])
    mix_into(buffer, clip, 5)
    mix_into(buffer, clip, -3)
    np.testing.assert_array_equal(buffer, [3, 0, 0, 1, 2])


def test_db_to_gain_and_peak_db_are_inverse():
    assert db_to_gain(0) == 1.0
    assert db_to_gain(20) == pytest.approx(10.0)
    assert db_to_gain(-6.0206) == pytest.approx(0.5, abs=1e-4)
    assert peak_db(np.array([0.1, -0.5, 0.2])) == pytest.approx(-6.0206, abs=1e-3)
    assert peak_db(np.array([0.0, -0.0])) == float("-inf")
    assert peak_db(np.array([])) == float("-inf")
    assert peak_db(np.array([db_to_gain(-9.0)])) == pytest.approx(-9.0)


def test_fade_edges_ramps_both_ends_and_keeps_the_middle():
    original = np.ones(1000, dtype=np.float32)
    faded = fade_edges(original, 0.005)  # 110 samples at 22050 Hz
    assert faded[0] == 0 and faded[-1] < 0.001
    assert 0 < faded[55] < 1 and faded[-55] == pytest.approx(faded[55], abs=0.03)
    np.testing.assert_array_equal(faded[110:-110], 1)
    assert np.all(np.diff(faded[:110]) > 0)
    np.testing.assert_array_equal(original, 1)  # a copy: the input is untouched


def test_resample_lengths_and_identity():
    x = np.linspace(-1, 1, 300).astype(np.float32)
    np.testing.assert_array_equal(resample(x, SAMPLE_RATE, SAMPLE_RATE), x)
    assert len(resample(x, 66150, SAMPLE_RATE)) == 100
    assert len(resample(x, 11025, SAMPLE_RATE)) == 600
    assert len(resample(np.zeros(0), 44100)) == 0
    # Upsampling a ramp by linear interpolation keeps it a ramp.
    np.testing.assert_allclose(resample(x, 11025, SAMPLE_RATE)[:598:2], x[:299], atol=1e-6)


# --- files made by a real tool, and the fix the message suggests ------------------------

needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")


@needs_sox
@pytest.mark.parametrize("options", [
    ["-r", "48000", "-c", "2", "-b", "24"],  # sox writes WAVE_FORMAT_EXTENSIBLE for these two
    ["-r", "96000", "-c", "6", "-b", "16"],
    ["-r", "8000", "-c", "1", "-b", "8", "-e", "unsigned"],
])
def test_reads_what_sox_writes(tmp_path, options):
    path = tmp_path / "tone.wav"
    subprocess.run(["sox", "-n", *options, str(path), "synth", "0.5", "sine", "440", "gain", "-6"], check=True)
    got = read_wav(path)
    assert len(got) == round(0.5 * SAMPLE_RATE)
    assert peak_db(got) == pytest.approx(-6.0, abs=0.3)
    spectrum = np.abs(np.fft.rfft(got))
    assert np.argmax(spectrum) * SAMPLE_RATE / len(got) == pytest.approx(440, abs=3)


@needs_sox
def test_the_suggested_sox_command_fixes_a_float_wav(tmp_path):
    path = tmp_path / "float bell.wav"
    subprocess.run(["sox", "-n", "-e", "floating-point", "-b", "32", str(path), "synth", "0.3", "sine", "440"],
                   check=True)
    with pytest.raises(ChimeError) as caught:
        read_wav(path)
    command = str(caught.value).split("`")[1]
    subprocess.run(shlex.split(command), check=True)
    converted = shlex.split(command)[-1]
    assert len(read_wav(converted)) == round(0.3 * SAMPLE_RATE)
