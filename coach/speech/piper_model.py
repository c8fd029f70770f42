"""A Piper voice model made ready for onnxruntime quickly: its phoneme durations exposed, no onnx package.

Piper times each phoneme from a tensor inside the model (the output of its one `Ceil`
node: how many frames each phoneme lasts), which the voice files do not list as an
output. piper-tts adds the output with the onnx package: onnx.load, edit, serialize,
about 1 s of CPU here, 0.8 s of it only importing onnx. That was most of Piper's start.

coach edits the model's bytes instead. In protobuf, a message field that appears twice
in the bytes is merged into one, so appending a second `graph` that holds nothing but one
more `output` adds that output to the model's graph. Finding the Ceil node's tensor only
walks the graph's fields; the weights are skipped over by their length.

The edited model is kept in a folder of the speech cache (the "prepared" model), so
onnxruntime reads it from a file, which costs less than handing it the bytes. It is made
by the first run that needs it and written under a temporary name, then renamed, so a
reader sees no file or a whole one; its name carries the voice file's path, size and
time, so a reinstalled voice gets a new one. One that does not load, or lacks the
durations, is logged in one line, deleted and made again.

onnxruntime is asked not to optimize the graph: its optimizations cost about 0.3 s of CPU
at every start and, measured on this voice, made synthesis no faster (median CPU of one
long sentence, 10 runs each, alternated: 1.08 s without, 1.22 s with).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mmap
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from coach.errors import one_line

log = logging.getLogger(__name__)

ORT_FATAL_ONLY = 4  # onnxruntime's log severities: 0 verbose ... 3 error, 4 fatal

# Part of a prepared model's name: change it when what a prepared model holds changes.
PREPARED_FORMAT = "alignment-output-1"
STALE_TMP_SECONDS = 3600.0

# ONNX's protobuf field numbers (onnx.proto): ModelProto.graph, GraphProto.node and .output,
# NodeProto.output and .op_type, ValueInfoProto.name.
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_OUTPUT = 1, 12
_NODE_OUTPUT, _NODE_OP_TYPE = 2, 4
_VALUE_INFO_NAME = 1

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_CEIL_OP_TYPE = bytes([_NODE_OP_TYPE << 3 | _BYTES, 4]) + b"Ceil"  # the field op_type = "Ceil", encoded


class ModelFormatError(ValueError):
    """The bytes are not an ONNX model this module can read, or have no single Ceil tensor."""


def alignment_suffix(model) -> bytes:
    """The bytes that, appended to `model` (bytes, or a memory map of the file), add its Ceil
    tensor (the frames of each phoneme) as a graph output; empty when it is one already.

    ModelFormatError when the bytes do not parse or the graph has no Ceil node or several.
    """
    ceil_outputs, outputs = _ceil_and_graph_outputs(model)
    if len(ceil_outputs) != 1:
        found = ", ".join(sorted(ceil_outputs)) or "none"
        raise ModelFormatError(f"expected one Ceil tensor to time the phonemes, found {found}")
    name = ceil_outputs[0]
    if name in outputs:
        return b""
    return _field(_MODEL_GRAPH, _field(_GRAPH_OUTPUT, _field(_VALUE_INFO_NAME, name.encode("utf-8"))))


def _file_suffix(model_path: Path) -> bytes:
    """alignment_suffix of a voice file, read through a memory map: the walk touches the
    graph's nodes and skips the weights, so most of the 60 MB is never read (8 ms, where
    reading the file took about 50)."""
    with open(model_path, "rb") as source:
        try:
            mapped = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise ModelFormatError("the voice file is empty") from None
        with mapped:
            try:
                return alignment_suffix(mapped)
            except ModelFormatError as err:
                # The error's traceback holds views of the map, which then cannot close
                # (BufferError, in place of the reason): keep only the reason.
                reason = str(err)
            raise ModelFormatError(reason)


def prepared_model_dir() -> Path:
    """The folder of prepared models: inside the speech cache (`coach cache clear` keeps it)."""
    from coach.speech.cache import cache_dir

    return cache_dir() / "piper-models"


def prepared_path(model_path: Path, directory: Path) -> Path:
    """Where the prepared copy of this voice file goes: named after its path, size and time."""
    # Not a hash of its content: reading 60 MB to hash it would cost about 0.1 s at every start.
    stat = model_path.stat()
    fields = {"source": str(model_path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
              "format": PREPARED_FORMAT}
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return directory / f"{model_path.stem}-{key}.onnx"


def load_session(model_path: Path, directory: Path | None = None):
    """An onnxruntime InferenceSession of a Piper voice model that also outputs its phoneme durations.

    From the prepared copy in `directory` when there is a good one, else from the voice
    file, edited in memory (and then kept in `directory` for the next run when it can be
    written there).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    # A failure comes back as an exception, which coach reports in one line: onnxruntime's own
    # log line for it (red, on stderr) only adds to that.
    options.log_severity_level = ORT_FATAL_ONLY

    def session(source: str | bytes):
        found = onnxruntime.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
        found.coach_source = source if isinstance(source, str) else str(model_path)  # for a retry
        return found

    model_path = Path(model_path)
    prepared = prepared_path(model_path, directory) if directory is not None else None
    if prepared is not None and prepared.exists():
        try:
            if prepared.stat().st_size <= model_path.stat().st_size:
                raise ModelFormatError("it is shorter than the voice file")
            found = session(str(prepared))
            if len(found.get_outputs()) < 2:
                raise ModelFormatError("it has no phoneme durations")
            return found
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own kinds for a damaged file
            log.warning("the prepared voice model %s did not load (%s): preparing it again from %s",
                        prepared, one_line(str(err)), model_path)
            with contextlib.suppress(OSError):
                prepared.unlink()
    # The copy is the voice file copied by the kernel (no 60 MB through Python: reading,
    # appending and writing it took about 250 ms of the first Piper session) plus the suffix.
    suffix = _file_suffix(model_path)
    if prepared is not None and _write_prepared(prepared, model_path, suffix):
        with contextlib.suppress(Exception):
            return session(str(prepared))
    return session(model_path.read_bytes() + suffix)


def _write_prepared(path: Path, source: Path, suffix: bytes) -> bool:
    """Write the voice file `source` with `suffix` appended to `path`, whole or not at all;
    drop older copies of the same voice. False when it cannot."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
        os.close(fd)
        shutil.copyfile(source, tmp)  # sendfile on Linux: the kernel copies it
        with open(tmp, "ab") as out:
            out.write(suffix)
        os.replace(tmp, path)
    except OSError as err:
        log.debug("cannot keep the prepared voice model in %s: %s", path.parent, err)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return False
    stem = path.stem.rsplit("-", 1)[0]
    for older in path.parent.glob(f"{stem}-*.onnx"):
        if older != path:
            with contextlib.suppress(OSError):
                older.unlink()
    # A run killed while writing leaves its temporary file (60 MB); one an hour old is nobody's.
    for left in path.parent.glob(f".{stem}-*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - left.stat().st_mtime > STALE_TMP_SECONDS:
                left.unlink()
    return True


def _ceil_and_graph_outputs(model: bytes) -> tuple[list[str], set[str]]:
    """The output tensors of the graph's Ceil nodes, and the names of the graph's outputs."""
    data = memoryview(model)
    ceil_outputs: list[str] = []
    outputs: set[str] = set()
    graphs = 0
    for number, wire, start, end in _fields(data, 0, len(data)):
        if number != _MODEL_GRAPH or wire != _BYTES:
            continue
        graphs += 1
        for g_number, g_wire, g_start, g_end in _fields(data, start, end):
            if g_wire != _BYTES:
                continue
            # Only a node whose bytes hold op_type "Ceil" as encoded is read field by field:
            # the graph has thousands of nodes.
            if g_number == _GRAPH_NODE and model.find(_CEIL_OP_TYPE, g_start, g_end) >= 0:
                op_type, node_outputs = b"", []
                for n_number, n_wire, n_start, n_end in _fields(data, g_start, g_end):
                    if n_wire == _BYTES and n_number == _NODE_OP_TYPE:
                        op_type = bytes(data[n_start:n_end])
                    elif n_wire == _BYTES and n_number == _NODE_OUTPUT:
                        node_outputs.append(_text(data, n_start, n_end))
                if op_type == b"Ceil":
                    ceil_outputs.extend(o for o in node_outputs if o not in ceil_outputs)
            elif g_number == _GRAPH_OUTPUT:
                outputs.update(_text(data, s, e) for f, w, s, e in _fields(data, g_start, g_end)
                               if f == _VALUE_INFO_NAME and w == _BYTES)
    if not graphs:
        raise ModelFormatError("no graph in the model")
    return ceil_outputs, outputs


def _fields(data: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value start, value end) of each field of the message in data[start:end]."""
    pos = start
    while pos < end:
        key, pos = _read_varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            _, after = _read_varint(data, pos, end)
        elif wire == _FIXED64:
            after = pos + 8
        elif wire == _FIXED32:
            after = pos + 4
        elif wire == _BYTES:
            length, pos = _read_varint(data, pos, end)
            after = pos + length
        else:  # groups (3, 4) are not used by ONNX
            raise ModelFormatError(f"unexpected protobuf wire type {wire} at byte {pos}")
        if after > end:
            raise ModelFormatError(f"the model is cut short (a field at byte {pos} runs past byte {end})")
        yield number, wire, pos, after
        pos = after


def _read_varint(data: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while pos < end and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ModelFormatError(f"the model is cut short or damaged (a number at byte {pos})")


def _text(data: memoryview, start: int, end: int) -> str:
    try:
        return bytes(data[start:end]).decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFormatError(f"a name in the model at byte {start} is not UTF-8") from None


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | _BYTES) + _varint(len(payload)) + payload
