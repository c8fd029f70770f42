"""Encoding only where there is sound, on every core: for codecs whose frames decode on
their own (AAC-LC; MP3 without its bit reservoir), or whose decoder state after a few
frames of silence no longer depends on what came before (Opus).

Most of a session is silence (the holds). The silence is encoded once, as one frame, and
that frame repeated; each island of sound (a few frames of silence each side included) is
encoded by its own encoder, the islands in parallel. It works because a fresh encoder
started at a multiple of the frame size frames its input exactly as one long encoder
would (the same priming, the same frame boundaries), and a frame whose input and
neighbours are all silence decodes to silence whichever encoder made it. The decoded audio
is where the timeline says to the sample, as with one encoder (tests/test_export_encoded.py).

An encoder may run at another rate than the session's (Opus at 48 kHz): it resamples each
island itself, and the islands then lie on frames of both rates (Opus's 20 ms frame is 441
samples at 22050 Hz and 960 at 48 kHz).

An hour's session is about half silence: this saves a quarter of LAME's time, and with
two cores halves what is left. libopus spends about as long on a frame of silence as on
one of speech, so for Opus it saves more than half.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction

import numpy as np

from coach.audio import SAMPLE_RATE

# Silence kept around each sound, in frames: more than the encoder's delay and the
# transform's overlap (MP3 1105 samples, 2 frames; AAC 1024, 1 frame; Opus 312 at 48 kHz,
# a third of a frame), so that every frame that touches the sound comes from the island's
# encoder, and Opus's decoder has decoded frames of silence from that encoder first.
MARGIN_FRAMES = 4
BLOCK = 1 << 16  # samples per AudioFrame handed to an encoder


def sound_islands(spans: Iterable[tuple[int, int]], total: int, frame: int) -> list[tuple[int, int]]:
    """[start, end) sample ranges, on frame boundaries, covering every (start, end) span of
    sound with MARGIN_FRAMES frames of silence each side; ranges that would touch are merged.
    The first starts at 0 and the last ends at `total`, so the file begins and ends with a
    real encoder's first and last frames (its priming and its padding)."""
    margin = MARGIN_FRAMES * frame
    out: list[list[int]] = []
    for start, end in spans:
        a = max(0, (start - margin) // frame * frame)
        b = min(total, -(-(end + margin) // frame) * frame)
        if out and a <= out[-1][1] + 2 * frame:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    if not out:
        return [(0, total)]
    out[0][0] = 0
    out[-1][1] = total
    return [(a, b) for a, b in out]


def encode_in_islands(av, make_encoder: Callable[[], object], sounds: Iterator[tuple[int, np.ndarray]],
                      spans: list[tuple[int, int]], total: int, mux: Callable[[object], None],
                      progress: Callable[[int, int], None] | None = None) -> None:
    """Encode the session's sounds island by island and hand every packet to `mux`, in
    order, as one encoder would have produced them. `sounds` are (start, int16 samples) in
    order (coach.mixer.session_pcm16), and `spans` their extents; make_encoder() opens a new
    encoder."""
    silent, first_pts, frame, rate = _silent_frame(av, make_encoder())
    if (frame * SAMPLE_RATE) % rate:
        raise RuntimeError(f"bug: a {frame}-sample frame at {rate} Hz is no whole number of samples at {SAMPLE_RATE} Hz")
    session_frame = frame * SAMPLE_RATE // rate  # the frame in the session's samples
    islands = sound_islands(spans, total, session_frame)
    workers = max(1, min(2, os.cpu_count() or 1))
    next_frame = 0  # the next frame index to mux
    pending: list[tuple[tuple[int, int], Future]] = []

    # One packet of silence, muxed again and again with new times: the muxer takes a new
    # reference to its data each time (a new Packet each would cost four times as much).
    silent_packet = av.Packet(silent)
    encoder_time = Fraction(1, rate)

    def mux_island(island: tuple[int, int], packets: list, next_start: int | None) -> None:
        nonlocal next_frame
        for index in range(next_frame, island[0] // session_frame):  # the silence before the island
            silent_packet.time_base = encoder_time  # muxing moved it to the stream's time base
            silent_packet.pts = silent_packet.dts = index * frame + first_pts
            silent_packet.duration = frame
            mux(silent_packet)
        next_frame = island[0] // session_frame
        stop = next_start // session_frame if next_start is not None else None
        for packet in packets:
            index, off_grid = divmod(packet.pts - first_pts, frame)
            if off_grid:
                # LAME's flush can end with an empty packet past the last frame; anything
                # else off the frame grid would break the timing.
                if stop is None and not packet.duration:
                    mux(packet)
                    continue
                raise RuntimeError(f"bug: a packet at {packet.pts} is off the {frame}-sample frame grid")
            if stop is not None and index >= stop:
                break  # silence that the next island's encoder makes too (its priming)
            if index >= next_frame:
                mux(packet)
                next_frame = index + 1
        if progress:
            progress(island[1], total)

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="coach-encode")
    try:
        if progress:
            progress(0, total)
        for island, pcm in _island_pcm(islands, sounds):
            pending.append((island, executor.submit(_encode_island, av, make_encoder, pcm, island[0])))
            while len(pending) > workers + 1:
                done_island, future = pending.pop(0)
                mux_island(done_island, future.result(), pending[0][0][0])
        while pending:
            done_island, future = pending.pop(0)
            mux_island(done_island, future.result(), pending[0][0][0] if pending else None)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _island_pcm(islands: list[tuple[int, int]], sounds: Iterator[tuple[int, np.ndarray]]):
    """Each island as 16-bit samples, its sounds in place and zeros between."""
    sounds = iter(sounds)
    waiting = next(sounds, None)
    for a, b in islands:
        pcm = np.zeros(b - a, dtype=np.int16)
        while waiting is not None and waiting[0] < b:
            start, sound = waiting
            pcm[start - a:start - a + len(sound)] = sound
            waiting = next(sounds, None)
        yield (a, b), pcm


def _encode_island(av, make_encoder, pcm: np.ndarray, start: int) -> list:
    """All the packets of one island, flushed; their pts count from the session's start, in
    the encoder's time base (which resamples the session's samples to its rate itself)."""
    encoder = make_encoder()
    time_base = Fraction(1, SAMPLE_RATE)
    packets = []
    for offset in range(0, len(pcm), BLOCK):
        block = av.AudioFrame.from_ndarray(pcm[None, offset:offset + BLOCK], format="s16", layout="mono")
        block.sample_rate = SAMPLE_RATE
        block.pts = start + offset
        block.time_base = time_base
        packets += encoder.encode(block)
    packets += encoder.encode(None)
    return packets


def _silent_frame(av, encoder) -> tuple[bytes, int, int, int]:
    """(one frame of steady silence, the pts of an encoder's first packet, frame size, and
    the encoder's rate; pts and size in the encoder's samples)."""
    frame, rate = encoder.frame_size, encoder.sample_rate
    session_samples = -(-12 * frame * SAMPLE_RATE // rate)
    packets = _encode_island(av, lambda: encoder, np.zeros(session_samples, dtype=np.int16), 0)
    return bytes(packets[len(packets) // 2]), packets[0].pts, frame, rate
