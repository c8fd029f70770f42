"""Compressed audio (m4a, mp3, opus): decoded back with PyAV, the sounds, chapters and tags
are where and what the timeline says.

The sessions are the synthetic ones of test_export.py: tones whose onsets are exact, so a
chime found in the decoded audio can be compared with its timeline time.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.test_export import CHIME_HZ, export_each, export_to_full_disk, make_routine, synthetic_session

from coach.audio import SAMPLE_RATE
from coach.errors import ExportError, UsageError
from coach.export import check_output, write_export
from coach.export import encoded
from coach.export.outline import INTRO_TITLE, OUTRO_TITLE, chapters
from coach.export.times import milliseconds
from coach.session import SessionOptions

av = pytest.importorskip("av", reason="PyAV (coach[media]) is installed by make test")

COMPRESSED = ("m4a", "mp3", "opus")
TOLERANCE_S = 0.010
TITLE = "Étirements doux à la maison 🧘"
CREDIT = "D'après « Souplesse » de Zoë Müller"


@pytest.fixture(scope="module")
def accented():
    routine = replace(make_routine(), title=TITLE, credit=CREDIT)
    return synthetic_session(routine, SessionOptions(countdown=3, speed=0.9))


@pytest.fixture(scope="module")
def encoded_files(accented, tmp_path_factory) -> dict[str, Path]:
    return export_each(accented, tmp_path_factory.mktemp("encoded"), COMPRESSED)


def decode(path: Path) -> tuple[np.ndarray, int]:
    """The whole file as float samples in [-1, 1] and its sample rate, as a player hears it."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        pieces = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        rate = stream.codec_context.sample_rate
    audio = np.concatenate(pieces).astype(np.float64)
    if np.issubdtype(pieces[0].dtype, np.integer):
        audio /= 32768
    return audio, rate


def first_loud(audio: np.ndarray, rate: int, around_s: float, level: float) -> float | None:
    """Seconds of the first sample above `level` within 50 ms either side of `around_s`."""
    lo = max(0, int((around_s - 0.05) * rate))
    hi = int((around_s + 0.05) * rate)
    loud = np.flatnonzero(np.abs(audio[lo:hi]) > level)
    return (lo + loud[0]) / rate if loud.size else None


@pytest.mark.parametrize("fmt", COMPRESSED)
def test_decoded_sounds_are_at_their_timeline_times(fmt, accented, encoded_files):
    audio, rate = decode(encoded_files[fmt])
    timeline = accented.timeline
    # The priming is skipped; an AAC decoder may still play the last frame's padding (silence).
    assert -TOLERANCE_S < len(audio) / rate - timeline.length_s < 0.05
    level = 0.3 * np.abs(audio).max()
    chimes = [e for e in timeline.events if e.kind == "chime"]
    assert {e.part for e in chimes} == set(CHIME_HZ)
    first_sound = timeline.audible()[0]
    for event in [first_sound, *chimes]:
        found = first_loud(audio, rate, event.start_s, level)
        assert found is not None, f"no sound near {event.start_s:.3f} s ({event.part})"
        assert abs(found - event.start_s) <= TOLERANCE_S, (event.part, event.start_s, found)


@pytest.mark.parametrize("fmt", COMPRESSED)
def test_chapters_at_section_starts_to_the_millisecond(fmt, accented, encoded_files):
    timeline = accented.timeline
    with av.open(str(encoded_files[fmt])) as container:
        found = [(ch["start"] * ch["time_base"] * 1000, ch["metadata"].get("title")) for ch in container.chapters()]
    want = [(milliseconds(ch.start), ch.title) for ch in chapters(timeline)]
    assert found == want
    titles = [title for _, title in found]
    assert titles[0] == INTRO_TITLE and titles[-1] == OUTRO_TITLE
    assert titles[1:-1] == [s.label for s in timeline.sections]  # "Leg up (right)", ...
    assert [start for start, _ in found[1:-1]] == [milliseconds(s.start) for s in timeline.sections]


@pytest.mark.parametrize("fmt", COMPRESSED)
def test_tags_come_back_in_utf8(fmt, accented, encoded_files):
    with av.open(str(encoded_files[fmt])) as container:
        tags = {**container.metadata, **container.streams.audio[0].metadata}
    assert tags["title"] == TITLE and tags["album"] == TITLE
    assert tags["artist"] == "coach"
    assert tags["description" if fmt == "m4a" else "credit"] == CREDIT
    assert "speed 0.9" in tags["comment"] and "countdown 3" in tags["comment"]
    assert "sides right, left" in tags["comment"]


def test_ogg_chapters_keep_their_milliseconds():
    """FFmpeg 8.1 writes 84.5 s as 00:01:25.500 in Ogg; coach writes its own comments."""
    found = encoded.vorbis_chapters([replace(ch, start=84 * SAMPLE_RATE + SAMPLE_RATE // 2)
                                     for ch in chapters(synthetic_session().timeline)[:1]])
    assert found == {"CHAPTER001": "00:01:24.500", "CHAPTER001NAME": INTRO_TITLE}


def test_chapters_cover_the_session_back_to_back():
    timeline = synthetic_session().timeline
    found = chapters(timeline)
    assert found[0].start == 0 and found[-1].end == timeline.length
    assert all(a.end == b.start and a.start < b.start for a, b in zip(found, found[1:]))
    outro = next(e for e in timeline.events if e.part == "outro")
    assert found[-1].start == outro.start


def test_bitrate_sets_the_size(accented, tmp_path):
    sizes = {}
    for bitrate in ("16k", "64k"):
        path = tmp_path / f"s-{bitrate}.opus"
        write_export(accented, str(path), bitrate=bitrate)
        sizes[bitrate] = path.stat().st_size
    assert sizes["64k"] > 2 * sizes["16k"]


@pytest.mark.parametrize("output, bitrate, words", [
    ("s.mp3", "loud", ["'loud' is not a bitrate", "64k"]),
    ("s.opus", "1k", ["between 6k and 256k"]),
    ("s.wav", "64k", ["--bitrate is for compressed audio", "wav has none"]),
    ("s.srt", "64k", ["srt has none"]),
    # float('inf') cannot become an int: an OverflowError went up as a traceback
    ("s.m4a", "inf", ["'inf' is not a bitrate"]),
    ("s.opus", "-inf", ["'-inf' is not a bitrate"]),
    ("s.mp3", "1e999k", ["'1e999k' is not a bitrate"]),
    # the page's audio is AAC, but the user asked for html: the message says html
    ("s.html", "8k", ["--bitrate for html must be between 16k and 128k"]),
])
def test_bad_bitrate_is_refused_before_any_work(output, bitrate, words, tmp_path):
    with pytest.raises(UsageError) as err:
        check_output(str(tmp_path / output), None, False, bitrate)
    assert all(word in str(err.value) for word in words), str(err.value)


def test_without_pyav_one_line_says_how_to_install(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from coach.cli import app

    monkeypatch.setattr(encoded, "have_pyav", lambda: False)
    for fmt in COMPRESSED:
        with pytest.raises(ExportError, match=r"needs PyAV .*pip install 'coach\[media\]'"):
            check_output(str(tmp_path / f"s.{fmt}"))
    result = CliRunner().invoke(app, ["export", "tests/data/short.toml", "-o", str(tmp_path / "s.m4a")])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: M4A export needs PyAV"), result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", COMPRESSED)
def test_full_disk_mid_encoding_leaves_no_partial_file(fmt, tmp_path, monkeypatch, capfd):
    session = synthetic_session()
    target = tmp_path / f"s.{fmt}"
    target.write_bytes(b"the old export")
    assert export_to_full_disk(session, target, 20_000, monkeypatch) > 0, "the failure came in the middle of the audio"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    assert target.read_bytes() == b"the old export"
    # The one error line is the CLI's: nothing printed on the way (PyAV prints each failure
    # after the first that comes back into its I/O callbacks as a traceback).
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("fmt", (*COMPRESSED, "html"))
def test_ctrl_c_while_encoding_leaves_no_file(fmt, tmp_path):
    session = synthetic_session()
    calls = []

    def interrupt(done, total):
        calls.append(done)
        if done > total // 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_export(session, str(tmp_path / f"s.{fmt}"), progress=interrupt)
    assert len(calls) > 2 and list(tmp_path.iterdir()) == []


def test_encoding_reports_progress_up_to_the_total(tmp_path):
    session = synthetic_session()
    calls = []
    write_export(session, str(tmp_path / "p.m4a"), progress=lambda done, total: calls.append((done, total)))
    total = session.timeline.length
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    dones = [done for done, _ in calls]
    assert dones == sorted(dones) and len(calls) > 5


def test_sound_islands_cover_every_sound_on_frame_boundaries():
    from coach.export.islands import MARGIN_FRAMES, sound_islands

    frame, total = 576, 100_000
    spans = [(0, 900), (1500, 2000), (20_000, 21_000), (60_000, 61_234)]
    found = sound_islands(spans, total, frame)
    assert found[0][0] == 0 and found[-1][1] == total
    assert all(a % frame == 0 for a, _ in found) and all(b % frame == 0 for _, b in found[:-1])
    assert all(b1 + 2 * frame < a2 for (_, b1), (a2, _) in zip(found, found[1:])), "apart, or merged"
    for start, end in spans:  # each sound inside one island, with its margin of silence
        assert any(a <= max(0, start - MARGIN_FRAMES * frame) and min(total, end + MARGIN_FRAMES * frame) <= b
                   for a, b in found)
    assert len(found) == 3  # the first two sounds are too close to be apart
    assert sound_islands([], total, frame) == [(0, total)]


def islands_and_whole(session, fmt: str, folder: Path, monkeypatch) -> tuple[tuple[np.ndarray, int], ...]:
    """The session decoded from a file encoded as islands (the default), and from one that
    a single encoder made from the first sample to the last."""
    apart = folder / f"islands.{fmt}"
    write_export(session, str(apart))
    monkeypatch.setitem(encoded.ENCODINGS, fmt, replace(encoded.ENCODINGS[fmt], islands=False))
    whole = folder / f"whole.{fmt}"
    write_export(session, str(whole))
    return decode(apart), decode(whole)


def test_islands_decode_as_one_encoder_would(tmp_path, monkeypatch):
    """MP3 without its bit reservoir: the islands and silent frames decode to what one
    encoder's stream decodes to, sample for sample within LAME's own small differences."""
    (a, rate), (b, _) = islands_and_whole(synthetic_session(), "mp3", tmp_path, monkeypatch)
    assert len(a) == len(b) and rate == SAMPLE_RATE
    assert np.abs(a - b).max() < 0.02


def test_intro_and_closing_chapters_speak_the_routine_language():
    timeline = synthetic_session().timeline
    german = chapters(timeline, "de")
    assert (german[0].title, german[-1].title) == ("Einleitung", "Ausklang")
    assert [c.title for c in german[1:-1]] == [s.label for s in timeline.sections]
    assert chapters(timeline, "sv")[0].title == INTRO_TITLE  # no names of its own: English


def test_cli_writes_each_compressed_format_and_the_page(tmp_path, monkeypatch):
    """The real command, real speech: a file of each kind, decodable, with its chapters."""
    from typer.testing import CliRunner

    from coach.cli import app

    monkeypatch.setenv("COACH_CACHE_DIR", str(tmp_path / "cache"))
    for fmt in (*COMPRESSED, "html"):
        out = tmp_path / f"short.{fmt}"
        result = CliRunner().invoke(app, ["export", "tests/data/short.toml", "-o", str(out), "-b", "32k"])
        assert result.exit_code == 0, result.output
        assert f"Wrote {out} ({fmt}," in result.stderr
        if fmt != "html":
            with av.open(str(out)) as container:
                titles = [ch["metadata"]["title"] for ch in container.chapters()]
            assert titles == [INTRO_TITLE, "Leg up (right)", "Leg across (right)", "Leg up (left)",
                              "Leg across (left)", OUTRO_TITLE]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(
        f"short.{fmt}" for fmt in (*COMPRESSED, "html"))


def resampled(samples: np.ndarray, rate: int) -> np.ndarray:
    """16-bit session samples at `rate` Hz, as floats (what an encoder at that rate is given)."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    out = [*resampler.resample(frame), *resampler.resample(None)]
    return np.concatenate([f.to_ndarray().reshape(-1) for f in out]).astype(np.float64) / 32768


def test_opus_islands_decode_close_to_the_mix_with_silent_joins(tmp_path, monkeypatch):
    """Opus frames hang together through the decoder's state, but after a few frames of
    silence that state no longer depends on what came before: the islands decode close to
    the mix, as long as one encoder's stream, and the joins in the silence make no sound.
    (Each island's encoder starts afresh, so it may choose another mode than a long one:
    on these pure tones hybrid rather than CELT, about 28 dB from the mix against 36.)"""
    from coach.export.audio import write_wav_stream
    from tests.test_export import read_wav_file

    session = synthetic_session()
    with open(tmp_path / "mix.wav", "wb") as handle:
        write_wav_stream(handle, session)
    mix, _ = read_wav_file(tmp_path / "mix.wav")
    reference = resampled(mix.copy(), 48_000)
    (a, rate), (b, _) = islands_and_whole(session, "opus", tmp_path, monkeypatch)
    assert len(a) == len(b) == len(reference) and rate == 48_000

    def snr_db(decoded):
        return 10 * np.log10((reference ** 2).sum() / ((decoded - reference) ** 2).sum())

    assert snr_db(a) > 20, snr_db(a)
    # Away from the sounds (40 ms either side; the codec's own tails are nearer) the joins
    # between islands and repeated silent frames add nothing to what one encoder leaves.
    near_sound = np.convolve(np.abs(reference) > 0, np.ones(2 * 1920 + 1), mode="same") > 0
    quiet_a, quiet_b = np.abs(a[~near_sound]).max(), np.abs(b[~near_sound]).max()
    assert quiet_a < 0.005 and quiet_a <= quiet_b + 0.001, (quiet_a, quiet_b)


# ---------------------------------------------------------------------------
# The MP3's ID3 tag, read as a strict reader would: ID3v2.4 sizes are syncsafe (seven bits a
# byte) everywhere, and every frame must end where the next begins.

def _syncsafe(four: bytes) -> int:
    assert all(b < 0x80 for b in four), f"not syncsafe: {four.hex()}"
    return (four[0] << 21) | (four[1] << 14) | (four[2] << 7) | four[3]


def read_id3(data: bytes) -> tuple[list[tuple[str, bytes]], int]:
    """The frames of the ID3v2.4 tag at the start of `data`, and where the audio begins."""
    assert data[:5] == b"ID3\x04\x00", data[:5]
    end = 10 + _syncsafe(data[6:10])
    return _frames(data[10:end]), end


def _frames(block: bytes) -> list[tuple[str, bytes]]:
    out, pos = [], 0
    while pos < len(block) and block[pos:pos + 4] != b"\0\0\0\0":
        size = _syncsafe(block[pos + 4:pos + 8])
        assert pos + 10 + size <= len(block), f"{block[pos:pos + 4]} runs past its tag"
        out.append((block[pos:pos + 4].decode("ascii"), block[pos + 10:pos + 10 + size]))
        pos += 10 + size
    return out


def _chapters_in(frames) -> list[tuple[str, int, int, str]]:
    found = []
    for frame_id, body in frames:
        if frame_id == "CHAP":
            name, _, rest = body.partition(b"\0")
            start, end = int.from_bytes(rest[:4], "big"), int.from_bytes(rest[4:8], "big")
            (sub_id, sub), = _frames(rest[16:])
            assert sub_id == "TIT2" and sub[:1] == b"\x03" and sub.endswith(b"\0")
            found.append((name.decode("ascii"), start, end, sub[1:-1].decode("utf-8")))
    return found


def test_mp3_chapters_and_tags_read_strictly_for_many_chapters_and_long_names(tmp_path):
    from coach.export.outline import utf8_within

    # FFmpeg's own tag wrote chapter sizes as plain numbers: from 128 bytes on (27 chapters,
    # or one long name) strict readers found none.
    long_name = "Étirement 🧘" * 8  # 96 characters, 152 bytes of UTF-8
    routine = replace(make_routine(extra_poses=20), title=TITLE, credit=CREDIT)
    routine = replace(routine, poses=(replace(routine.poses[0], name=long_name), *routine.poses[1:]))
    session = synthetic_session(routine, SessionOptions(countdown=3, speed=0.9))
    path = tmp_path / "many.mp3"
    write_export(session, str(path))
    frames, audio_at = read_id3(path.read_bytes())
    by_id = {}
    for frame_id, body in frames:
        by_id.setdefault(frame_id, body)
    assert by_id["TIT2"] == b"\x03" + TITLE.encode() + b"\0" and by_id["TALB"] == by_id["TIT2"]
    assert by_id["TXXX"] == b"\x03credit\0" + CREDIT.encode() + b"\0"
    comment = by_id["COMM"]
    assert comment[:5] == b"\x03eng\0" and b"speed 0.9" in comment  # the comment players show
    want = chapters(session.timeline)
    assert len(want) > 40
    found = _chapters_in(frames)
    # A name is cut (at a character, with "…") to 125 bytes, the most that FFmpeg's reading of
    # the frame sizes inside a chapter agrees with the standard's.
    assert [(start, end, title) for _, start, end, title in found] == \
        [(milliseconds(c.start), milliseconds(c.end), utf8_within(c.title, 125)) for c in want]
    cut = [title for *_, title in found if title.startswith("Étirement 🧘")]
    assert cut and all(title.endswith("…") and len(title.encode()) <= 125 for title in cut)
    # ...so that FFmpeg-based readers (ffprobe, VLC, PyAV) list every chapter, the long one too:
    # they dropped a chapter whose name was 126 bytes or more.
    import av

    with av.open(str(path)) as container:
        read = [chapter["metadata"].get("title") for chapter in container.chapters()]
    assert read == [title for *_, title in found]
    toc = by_id["CTOC"]
    name, _, rest = toc.partition(b"\0")
    assert name == b"toc" and rest[0] == 0x03 and rest[1] == len(want)
    assert rest[2:].split(b"\0")[:-1] == [ch.encode() for ch, *_ in found]
    # The audio after the tag is a whole MP3 that decodes as before: its first frame's sync.
    assert path.read_bytes()[audio_at:audio_at + 2][0] == 0xFF


def test_an_id3_table_of_contents_holds_255_entries_and_more_go_in_tables_below_it():
    from coach.export.id3 import chapter_frames
    from coach.export.outline import Chapter

    many = [Chapter(i * 1000, (i + 1) * 1000, f"Pose {i}") for i in range(600)]
    frames = _frames(b"".join(chapter_frames(many)))
    tocs = [(body.partition(b"\0")[0], body.partition(b"\0")[2]) for frame_id, body in frames if frame_id == "CTOC"]
    top, *below = tocs
    assert top[0] == b"toc" and top[1][0] == 0x03 and top[1][1] == len(below) == 3
    assert [rest[1] for _, rest in below] == [255, 255, 90]
    listed = [entry for _, rest in below for entry in rest[2:].split(b"\0")[:-1]]
    assert listed == [f"ch{i}".encode() for i in range(600)]
    assert [title for *_, title in _chapters_in(frames)] == [c.title for c in many]


def test_an_m4a_chapter_name_too_long_for_its_box_is_cut_at_a_character(tmp_path):
    long_name = "🧘" * 70  # 280 bytes of UTF-8, and the side after it
    routine = make_routine()
    routine = replace(routine, poses=(replace(routine.poses[0], name=long_name), *routine.poses[1:]))
    path = tmp_path / "long.m4a"
    write_export(synthetic_session(routine), str(path))
    data = path.read_bytes()
    at = data.index(b"chpl")
    count = data[at + 12]
    names, pos = [], at + 13
    for _ in range(count):  # 8 bytes of time, one of length, the name
        size = data[pos + 8]
        names.append(data[pos + 9:pos + 9 + size].decode("utf-8"))  # whole characters only
        pos += 9 + size
    cut = [name for name in names if name.startswith("🧘")]
    assert cut and all(name.endswith("…") and len(name.encode()) <= 255 for name in cut)


@pytest.mark.parametrize("fmt", COMPRESSED)
def test_a_signal_inside_the_encoder_s_write_callback_prints_no_traceback(fmt, tmp_path, monkeypatch, capfd):
    # A SIGTERM whose handler runs while FFmpeg is inside coach's write callback: PyAV's
    # callback catches only Exception, so a Terminated (or Ctrl-C) raised there was printed
    # as a traceback before the `Stopped ...` line (seen with `coach export -o s.html`).
    import os
    import signal

    from coach import signals

    session = synthetic_session()
    real_fdopen = os.fdopen

    class SignalMidWrite:
        def __init__(self, handle):
            self._handle, self.written = handle, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 20_000 and not signals.recorded_stop():
                os.kill(os.getpid(), signal.SIGTERM)  # its handler runs here, in the callback
            return self._handle.write(data)

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._handle.close()

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: SignalMidWrite(real_fdopen(fd, *a, **k)))
    with signals.as_exceptions(), pytest.raises(signals.Terminated):
        write_export(session, str(tmp_path / f"s.{fmt}"))
    assert list(tmp_path.iterdir()) == []
    assert "Traceback" not in capfd.readouterr().err
