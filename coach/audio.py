"""Audio basics shared by speech, chimes, the mixer and the sinks.

Internally audio is float32 mono in [-1, 1] at SAMPLE_RATE. Reading a WAV is done
here with a small RIFF parser rather than the stdlib `wave` module: on Python 3.11
`wave` refuses WAVE_FORMAT_EXTENSIBLE files, which is what many tools write for
24-bit or multi-channel PCM, and its errors do not tell a user what to do.
"""

from __future__ import annotations

import shlex
import stat
import struct
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np

from coach.errors import ChimeError, one_line

SAMPLE_RATE = 22050  # pyttsx3/espeak-ng's own rate: speech needs no resampling

# A sound file a routine names is a short chime; anything bigger is a mistake
# (a whole album, a video) and would only waste memory before being rejected.
MAX_WAV_SECONDS = 10.0
MAX_WAV_BYTES = 20 * 1024 * 1024

_PCM = 0x0001
_EXTENSIBLE = 0xFFFE
_FORMAT_NAMES = {
    0x0002: "MS ADPCM",
    0x0003: "32-bit float",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0055: "MP3",
}
# First bytes of formats people commonly rename to .wav by mistake: what it is, sox's type.
_MAGIC = {
    b"ID3": ("an MP3", "mp3"),
    b"\xff\xfb": ("an MP3", "mp3"),
    b"\xff\xf3": ("an MP3", "mp3"),
    b"\xff\xf2": ("an MP3", "mp3"),
    b"OggS": ("an Ogg/Vorbis file", "ogg"),
    b"fLaC": ("a FLAC file", "flac"),
    b"FORM": ("an AIFF file", "aiff"),
}


def read_wav(path: Path | str) -> np.ndarray:
    """A PCM WAV file as float32 mono at SAMPLE_RATE.

    Accepts 8-bit (unsigned), 16-, 24- and 32-bit integer PCM, any channel count
    (averaged to mono) and any sample rate (resampled). Anything else raises a
    one-line ChimeError that names the file and says how to fix it.
    """
    path = Path(path)
    data = _read_bytes(path)
    channels, rate, width, pcm = _parse_riff(path, data)
    frames = len(pcm) // (channels * width)
    if frames == 0:
        raise _fail(path, "contains no audio (0 frames)", "export or record the sound again")
    seconds = frames / rate
    if seconds > MAX_WAV_SECONDS:
        raise _fail(path, f"is {seconds:.1f} s long, over the {MAX_WAV_SECONDS:g} s limit for a sound",
                    f"trim it, e.g. `sox {_q(path)} {_q(_suggest_output(path, 'short'))} trim 0 2`")
    samples = _decode_pcm(pcm[: frames * channels * width], width).reshape(frames, channels)
    mono = samples.mean(axis=1) if channels > 1 else samples[:, 0]
    return resample(mono, rate, SAMPLE_RATE)


def write_wav(target: Path | str | BinaryIO, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Write mono samples as a 16-bit PCM WAV to a path or a binary file object.

    Out-of-range samples are clipped, never wrapped around.
    """
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"write_wav takes mono samples (1-D), got shape {samples.shape}")
    target = str(target) if isinstance(target, Path) else target
    with wave.open(target, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(rate))
        out.writeframes(to_int16(samples).astype("<i2").tobytes())


def to_int16(samples: np.ndarray, *, scratch: bool = False) -> np.ndarray:
    """Float samples as int16, clipped to [-1, 1] first so loud peaks never wrap.

    The scale is 32768, the inverse of read_wav's, so writing what was read loses nothing;
    +1.0 itself lands one step short, on 32767. With scratch=True a float32 input is
    worked on in place (the caller has no further use for it), saving a copy.
    """
    # Float32 and in place: this runs over every sample of an hour-long export.
    if scratch and isinstance(samples, np.ndarray) and samples.dtype == np.float32:
        scaled = samples
    else:
        scaled = np.array(samples, dtype=np.float32)  # a copy, so the caller's array is untouched
    # NaN would turn into an arbitrary integer; treat it as silence (infinities clip below).
    # One sum finds any NaN (it spreads through the sum) faster than checking each sample.
    if np.isnan(scaled.sum()):
        np.nan_to_num(scaled, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    np.clip(scaled, -1.0, 1.0, out=scaled)
    scaled *= 32768.0
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype(np.int16)


def mix_into(buffer: np.ndarray, clip: np.ndarray, offset_samples: int, gain: float = 1.0) -> None:
    """Add `clip * gain` into `buffer` starting at `offset_samples`, in place.

    The part of the clip that falls outside the buffer (before its start or after
    its end) is dropped.
    """
    offset = int(offset_samples)
    start = max(offset, 0)
    end = min(offset + len(clip), len(buffer))
    if end <= start:
        return
    part = clip[start - offset: end - offset]
    buffer[start:end] += part * gain if gain != 1.0 else part


def db_to_gain(db: float) -> float:
    """Decibels to a linear amplitude factor (-6 dB is about 0.5)."""
    return float(10.0 ** (db / 20.0))


def peak_amplitude(samples: np.ndarray) -> float:
    """The largest |sample| (0.0 for no samples), without an |x| copy of a long clip."""
    samples = np.asarray(samples)
    if not samples.size:
        return 0.0
    return max(float(samples.max()), -float(samples.min()))


def peak_db(samples: np.ndarray) -> float:
    """The peak level in dBFS (0 dB = full scale); -inf for silence or no samples."""
    if len(samples) == 0:
        return float("-inf")
    peak = peak_amplitude(samples)
    return float(20.0 * np.log10(peak)) if peak > 0 else float("-inf")


def fade_edges(samples: np.ndarray, seconds: float, rate: int = SAMPLE_RATE, *,
               in_place: bool = False) -> np.ndarray:
    """A copy with a raised-cosine fade-in and fade-out of `seconds`, so edges never click;
    with in_place=True, `samples` itself (float32) is faded and returned."""
    out = samples if in_place else np.array(samples, dtype=np.float32)
    length = min(int(round(seconds * rate)), len(out) // 2)
    if length > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(length) / length)).astype(np.float32)
        out[:length] *= ramp
        out[len(out) - length:] *= ramp[::-1]
    return out


def resample(samples: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Change the sample rate: a windowed-sinc low-pass when going down, then linear interpolation.

    Plenty for chimes; output length is round(len * to_rate / from_rate).
    """
    x = np.asarray(samples, dtype=np.float64)
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    if from_rate == to_rate or len(x) == 0:
        return x.astype(np.float32)
    if to_rate < from_rate:
        # Remove what the new rate cannot hold, or it would fold back as aliasing.
        x = _lowpass(x, cutoff=0.5 * to_rate / from_rate)
    count = max(1, int(round(len(x) * to_rate / from_rate)))
    positions = np.arange(count) * (from_rate / to_rate)
    return np.interp(positions, np.arange(len(x)), x).astype(np.float32)


def _lowpass(x: np.ndarray, cutoff: float) -> np.ndarray:
    """Blackman-windowed sinc low-pass; `cutoff` in cycles per sample (0.5 = Nyquist)."""
    half = int(np.ceil(8.0 / cutoff))
    n = np.arange(-half, half + 1)
    kernel = 2.0 * cutoff * np.sinc(2.0 * cutoff * n) * np.blackman(len(n))
    kernel /= kernel.sum()
    return np.convolve(x, kernel, mode="full")[half: half + len(x)]


def _read_bytes(path: Path) -> bytes:
    try:
        info = path.stat()
        size = info.st_size
        if stat.S_ISDIR(info.st_mode):
            raise _fail(path, "is a folder, not a WAV file", "name a .wav file inside it")
        if not stat.S_ISREG(info.st_mode):  # a pipe would wait for a writer, a device never end
            raise _fail(path, "is not a regular file (a pipe, socket or device)", "give the path of a WAV file")
        if size > MAX_WAV_BYTES:
            raise _fail(path, f"is {size / 2**20:.1f} MB, over the {MAX_WAV_BYTES // 2**20} MB "
                        "limit for a sound", "use a short clip of a few seconds")
        if size == 0:
            raise _fail(path, "is an empty file (0 bytes)", "export or record the sound again")
        return path.read_bytes()
    except FileNotFoundError:
        raise _fail(path, "does not exist", "check the file name and folder") from None
    except PermissionError:
        raise _fail(path, "cannot be read (permission denied)",
                    f"check its permissions, e.g. `chmod a+r {_q(path)}`") from None
    except OSError as err:
        raise _fail(path, f"cannot be read ({err.strerror or err})", "check the file") from None


def _parse_riff(path: Path, data: bytes) -> tuple[int, int, int, bytes]:
    """(channels, rate, bytes per sample, PCM bytes) from a RIFF/WAVE file's chunks."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        if data[:4] == b"RIFF" and len(data) < 12:
            raise _truncated(path, "the header is cut off")
        what, sox_type = next((kind for magic, kind in _MAGIC.items() if data.startswith(magic)), (None, None))
        if what is None:
            raise _fail(path, "is not a WAV file",
                        "give a PCM .wav file, e.g. converted with `sox IN.mp3 -b 16 OUT.wav`")
        # sox goes by the file name's suffix, so name the real type for a misnamed file.
        source = f"-t {sox_type} {_q(path)}"
        raise _fail(path, f"is not a WAV file (it looks like {what})",
                    f"convert it with `sox {source} -b 16 {_q(_suggest_output(path))}`")
    fmt = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos: pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = data[pos + 8: pos + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise _truncated(path, "the format chunk is cut off")
            fmt = _parse_fmt(path, body)
        elif chunk_id == b"data":
            if fmt is None:
                raise _fail(path, "has its audio before its format chunk", _convert_hint(path))
            if len(body) < size:
                raise _truncated(path, f"the data chunk says {size} bytes but only {len(body)} are present")
            return (*fmt, body)
        pos += 8 + size + (size & 1)  # chunks are padded to an even length
    if fmt is None:
        raise _truncated(path, "no format chunk was found")
    raise _truncated(path, "no audio data chunk was found")


def _parse_fmt(path: Path, body: bytes) -> tuple[int, int, int]:
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE and len(body) >= 26:
        # The real format is the first two bytes of the sub-format GUID.
        (tag,) = struct.unpack_from("<H", body, 24)
    if tag != _PCM:
        name = _FORMAT_NAMES.get(tag, f"format tag 0x{tag:04x}")
        raise _fail(path, f"is a compressed/non-PCM WAV ({name})",
                    f"convert it with `sox {_q(path)} -b 16 {_q(_suggest_output(path))}`")
    width = block_align // channels if channels else 0
    if channels == 0 or rate == 0 or width * channels != block_align or not 1 <= width <= 4 or bits > 8 * width:
        raise _fail(path, f"has an unusable header ({channels} channels, {rate} Hz, {bits}-bit)",
                    f"convert it with `sox {_q(path)} -b 16 {_q(_suggest_output(path))}`")
    return channels, rate, width


def _decode_pcm(pcm: bytes, width: int) -> np.ndarray:
    """Little-endian integer PCM bytes as float32 in [-1, 1)."""
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        return (np.frombuffer(pcm, np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
    if width == 3:
        raw = np.frombuffer(pcm, np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = (value ^ 0x800000) - 0x800000  # sign-extend 24 to 32 bits
        return (value / float(1 << 23)).astype(np.float32)
    return (np.frombuffer(pcm, "<i4") / float(1 << 31)).astype(np.float32)


def _fail(path: Path, problem: str, fix: str) -> ChimeError:
    return ChimeError(one_line(f"{path} {problem}; {fix}"))


def _truncated(path: Path, detail: str) -> ChimeError:
    return _fail(path, f"is truncated or damaged ({detail})", "copy or export the file again")


def _convert_hint(path: Path) -> str:
    return f"convert it to 16-bit PCM WAV, e.g. `sox {_q(path)} -b 16 {_q(_suggest_output(path))}`"


def _suggest_output(path: Path, tag: str = "16bit") -> Path:
    return path.with_name(f"{path.stem}-{tag}.wav")


def _q(path: Path) -> str:
    return shlex.quote(str(path))
