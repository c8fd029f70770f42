"""What the person sees, if they look: a rich live panel, or one plain line per event.

Both are player Listeners. `LiveDisplay` (stdout is a terminal, not --quiet) shows the
routine title, pose and side, a hold progress bar with the seconds left, what comes
next, elapsed and total time, and the keys. `LogDisplay` prints `[mm:ss] pose (side): text`
per event, flushed at once, so it reads well in a log file or through a pipe.
rich is imported only for the live panel: --quiet starts that much sooner.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import IO

from typing import TYPE_CHECKING

from coach.audio import SAMPLE_RATE
from coach.player import Listener, Status, Stop
from coach.timeline import Event, Section, Timeline

if TYPE_CHECKING:
    from rich.console import Console, Group
    from rich.panel import Panel
    from rich.table import Table

KEY_HELP = "space pause/resume · n next pose · b back · -/+ speed · 9/0 volume · h keys aloud · q quit"
# What the h key says, for someone who cannot see the screen.
SPOKEN_KEYS = ("Keys: space pauses and resumes. N, next pose. B, back. Minus, slower. Plus, faster. "
               "Nine, quieter. Zero, louder. H, these keys. Q, quit.")
NO_KEY_HELP = "Ctrl-C to stop"
SHORT_KEY_HELP = "h keys aloud · q quit"  # when the whole key line does not fit the terminal
PANEL_WIDTH = 76
HOLD_BAR_WIDTH = 30
MOST_COMPACT = 4  # LiveDisplay.render's most compact panel on a short terminal
BARE = MOST_COMPACT + 1  # ...and below that, lines without a border, the clock first


def format_clock(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def _resolved(value):
    """A display's starting value, given as itself or as a function that works it out."""
    return value() if callable(value) else value


def format_total(total: float, estimated: bool) -> str:
    """The session's length, `~07:22` while it is an estimate (not every clip is known yet)."""
    return ("~" if estimated else "") + format_clock(total)


def format_settings(status: Status) -> str:
    return f"speed {status.speed:g} · volume {round(status.volume * 100)}%"


def current_word(event: Event, at: float) -> int | None:
    """The index of the word of `event` being said at sample `at` (the last begun), or None."""
    current = None
    for i, word in enumerate(event.words):
        if word.start <= at:
            current = i
        else:
            break
    return current


def event_label(event: Event) -> str:
    """Who/where an event belongs to: "Leg up (right)", or its part ("intro", "outro")."""
    if event.pose:
        return f"{event.pose} ({event.side})" if event.side else event.pose
    return event.part


def event_text(event: Event) -> str:
    if event.kind == "chime":
        return f"(chime: {event.part.replace('_', ' ')})"
    return event.text


class LogDisplay(Listener):
    """One plain line per event, e.g. `[03:12] Leg up (right): (chime: midpoint)`."""

    def __init__(self, timeline: Timeline, title: str, stream: IO[str] | None = None,
                 total: tuple[float, bool] | Callable[[], tuple[float, bool]] | None = None) -> None:
        self.timeline = timeline
        self.title = title
        self.stream = stream
        self.total = total  # or how to work it out, when the title line is printed
        self.captions = False  # every spoken line is printed anyway: nothing to add
        self._gone = False  # the reader went away (`| head`): the session plays on, unseen
        self._begun = False  # an event has been logged

    def __enter__(self) -> LogDisplay:
        total = _resolved(self.total) or (self.timeline.length_s, False)
        self._line(f"{self.title} ({format_total(*total)})")
        return self

    def __exit__(self, *exc) -> None:
        return None

    def _line(self, text: str) -> None:
        if self._gone:
            return
        stream = self.stream or sys.stdout
        try:
            print(text, file=stream, flush=True)
        except BrokenPipeError:
            # As with stdout closed from the start: the sound goes on. The descriptor points
            # at /dev/null, so Python's flush at exit has nowhere to fail.
            from coach.files import discard_stream

            self._gone = True
            discard_stream(stream)

    def event(self, event: Event, status: Status) -> None:
        self._begun = True
        if event.kind == "hold":
            return  # the hold-start chime already marks it
        self._line(f"[{format_clock(event.start_s)}] {event_label(event)}: {event_text(event)}")

    def paused(self, status: Status) -> None:
        said = f": the keys, aloud ({KEY_HELP})" if status.keys_aloud else ""
        self._line(f"[{format_clock(status.position)}] paused{said}")

    def resumed(self, status: Status) -> None:
        self._line(f"[{format_clock(status.position)}] resumed")

    def moved(self, status: Status) -> None:
        where = status.section.label if status.section else "the beginning"
        self._line(f"[{format_clock(status.position)}] moved to {where}")

    def changed(self, status: Status) -> None:
        self._line(f"[{format_clock(status.position)}] {format_settings(status)}")

    def preparing(self, status: Status) -> None:
        if self._begun:  # not the first line's own making, before anything was heard
            self._line(f"[{format_clock(status.position)}] preparing speech...")

    def ready(self, status: Status, waited: float) -> None:
        self._line(f"[{format_clock(status.position)}] waited {waited:.2f} s for speech to be ready")

    def note(self, text: str) -> None:
        self._line(f"Note: {text}")

    def replanned(self, timeline: Timeline) -> None:
        self.timeline = timeline

    def finish(self, stop: Stop) -> None:
        if stop.reason == "end":
            self._line(f"[{format_clock(stop.position)}] end of the session")


class LiveDisplay(Listener):
    """A rich panel redrawn a few times a second while the player waits."""

    # Seconds between redraws: often enough to follow the words while one is spoken.
    IDLE_REFRESH = 0.2
    WORDS_REFRESH = 0.08

    def __init__(self, timeline: Timeline, title: str, console: Console | None = None,
                 keys: bool = True, labels: list[str] | None = None,
                 first: Status | Callable[[], Status] | None = None, intro: bool = True,
                 stream: IO[str] | None = None) -> None:
        self.timeline = timeline
        self.labels = labels  # every section's label, known before its clips are (else the timeline's)
        self.title = title
        # rich (about 35 ms to import) is loaded when the panel is first drawn, not before:
        # a live session draws it once its first sound is playing (coach.live.GuardedListener).
        self.console = console
        self._stream = stream  # where a console made then writes (None: stdout)
        self.help = KEY_HELP if keys else NO_KEY_HELP
        self.captions = False  # no sound: print each spoken line above the panel as well
        self.now = ""
        self.speaking: Event | None = None  # the utterance last begun, whose words are marked
        self._live = None
        self._first = first  # drawn before the player's first status (or how to work it out)
        self._last = Status(0.0, False, None)
        self.intro = intro  # False: the session begins with its first pose (--from, minimal guidance)
        self._fit: tuple[tuple, int] | None = None  # (what the panel's height depends on, compact level)

    def __enter__(self) -> LiveDisplay:
        from rich.console import Console
        from rich.live import Live

        if self.console is None:
            self.console = Console(file=self._stream)
        self._live = Live(console=self.console, auto_refresh=False, transient=False,
                          redirect_stdout=True, redirect_stderr=True)
        self._last = _resolved(self._first) or self._last
        self._live.update(self.render(self._last))
        self._live.start(refresh=True)
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(OSError):  # the terminal has hung up: nothing to tidy on it
            if self._live is not None:
                self._live.stop()

    def hides_cursor(self) -> bool:
        """Whether the panel is on the terminal now, with its cursor hidden (rich's Live does that)."""
        return self._live is not None and self._live.is_started

    def _show(self, status: Status) -> None:
        self._last = status
        self._live.update(self.render(status), refresh=True)

    def event(self, event: Event, status: Status) -> None:
        if event.kind == "speech":
            self.now = event.text
            self.speaking = event
            if self.captions:
                self._live.console.print(f"[{format_clock(event.start_s)}] {event_label(event)}: {event.text}",
                                         markup=False, highlight=False)
        self._show(status)

    def tick(self, status: Status) -> None:
        self._show(status)

    paused = resumed = changed = preparing = tick

    def moved(self, status: Status) -> None:
        # n or b: the line said before the jump is not said here (n while paused, say, or into
        # the closing words, whose first line comes a moment later). What is said at the new
        # place, if anything, is shown; its own event marks its words as it is spoken.
        at = status.position * SAMPLE_RATE
        here = next((e for e in self.timeline.events if e.kind == "speech" and e.start <= at < e.end), None)
        self.now, self.speaking = (here.text, here) if here is not None else ("", None)
        self.tick(status)

    def ready(self, status: Status, waited: float) -> None:
        self.tick(status)

    def note(self, text: str) -> None:
        self._live.console.print(f"Note: {text}", markup=False, highlight=False)

    def replanned(self, timeline: Timeline) -> None:
        self.timeline = timeline

    def finish(self, stop: Stop) -> None:
        if stop.reason == "end":
            self.now = "The session is complete."
            self.speaking = None
        self._show(replace(self._last, position=stop.position, paused=False, preparing=False,
                           section=stop.section))

    def render(self, status: Status) -> Panel:
        """The panel, as much of it as the terminal has rows for: rich's Live cuts a panel
        taller than the terminal at its bottom, where the clock is. On a short terminal the
        key line gives way first (to SHORT_KEY_HELP, then to nothing), then Voice, then Next,
        and last the phrase being said is cut to one line."""
        width, height = self.console.size
        # What decides the panel's height changes a few times a minute, not at every redraw
        # (measuring it costs as much as drawing it): the fit is remembered until then.
        key = (width, height, self.now, status.preparing, status.paused, status.keys_aloud,
               status.section and status.section.index)
        if self._fit is not None and self._fit[0] == key:
            return self._panel(status, self._fit[1])
        for compact in range(MOST_COMPACT + 1):
            panel = self._panel(status, compact)
            # height - 1: the cursor's line below the panel
            if len(self.console.render_lines(panel, pad=False)) <= height - 1:
                break
        else:
            compact = BARE
            panel = self._panel(status, compact)
        self._fit = (key, compact)
        return panel

    def _panel(self, status: Status, compact: int) -> Panel | Group:
        if compact == BARE:
            return self._bare(status)
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        position = status.position
        section = status.section
        at = position * SAMPLE_RATE
        count = len(self.labels) if self.labels is not None else len(self.timeline.sections)
        closing = section is not None and section.index == count - 1 and at >= section.end
        if section is None and not self.intro and count:
            heading = self._label(0)  # its first pose, before the timeline has reached it
        elif section is None:
            heading = "Introduction"
        elif closing:
            heading = "Closing"
        else:
            heading = section.label

        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", style="dim")
        grid.add_column()
        grid.add_row("Pose", Text(heading, style="bold"))
        width = min(self.console.width, PANEL_WIDTH)
        if section is not None and not closing:
            grid.add_row("Hold", self._hold(section, at, width))
        if status.keys_aloud:  # the h key: what is being said, for whoever can see it
            keys = Text(self.help, style="bold", overflow="fold")
            if compact == MOST_COMPACT:
                keys.no_wrap, keys.overflow = True, "ellipsis"
            grid.add_row("Keys", keys)
        elif status.preparing:
            grid.add_row("Now", Text("Preparing speech…", style="italic"))
        else:
            now = self._now(at)
            if compact == MOST_COMPACT:
                now.no_wrap, now.overflow = True, "ellipsis"
            grid.add_row("Now", now)
        if compact < 3:
            grid.add_row("Next", Text(self._next(section, closing)))
        clock = f"{format_clock(position)} / {format_total(*self._total(status))}"
        grid.add_row("Time", Text(clock + ("   PAUSED" if status.paused else ""),
                                  style="bold yellow" if status.paused else ""))
        if compact < 2:
            grid.add_row("Voice", Text(format_settings(status)))
        parts = [grid]
        if not status.keys_aloud and (compact == 0 or (compact == 1 and self.help == KEY_HELP)):
            parts.append(Text(self.help if compact == 0 else SHORT_KEY_HELP, style="dim"))
        # A fixed width, so the panel does not jump about as the texts change.
        return Panel(Group(*parts), title=Text(self.title), width=width)

    def _bare(self, status: Status) -> Group:
        """A terminal too small for any panel (a few rows): one line each, no border, as
        many as there are rows, the clock first, so rich's Live never cuts it off."""
        from rich.console import Group
        from rich.text import Text

        section = status.section
        clock = f"{format_clock(status.position)}/{format_total(*self._total(status))}"
        at = status.position * SAMPLE_RATE
        where = section.label if section is not None else "Introduction"
        if section is not None and section.hold_start <= at < section.hold_start + section.hold_length:
            where += f" · {math.ceil((section.hold_start + section.hold_length - at) / SAMPLE_RATE)} s left"
        lines = [clock + (" PAUSED" if status.paused else ""), where,
                 "Preparing speech…" if status.preparing else self.help if status.keys_aloud else self.now]
        rows = max(1, self.console.size[1] - 1)
        return Group(*(Text(line, no_wrap=True, overflow="ellipsis") for line in lines[:rows] if line))

    def _total(self, status: Status) -> tuple[float, bool]:
        return (status.total if status.total is not None else self.timeline.length_s), status.estimated

    @property
    def refresh(self) -> float:
        speaking = self.speaking
        if speaking is not None and speaking.words and self._last.position * SAMPLE_RATE < speaking.end:
            return self.WORDS_REFRESH
        return self.IDLE_REFRESH

    def _now(self, at: float):
        """The phrase being said, its current word marked (the words' times are on the event)."""
        from rich.text import Text

        event = self.speaking
        if event is None or not event.words or not event.start <= at < event.end:
            return Text(self.now, overflow="fold")
        current = current_word(event, at)
        text = Text(overflow="fold")
        for i, word in enumerate(event.words):
            if i:
                text.append(" ")
            text.append(word.text, style="bold reverse" if i == current else "")
        return text

    def _hold(self, section: Section, at: float, width: int = PANEL_WIDTH) -> Table:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        length = section.hold_length
        done = min(max(at - section.hold_start, 0.0), length)
        left = math.ceil((length - done) / SAMPLE_RATE) if at >= section.hold_start else length / SAMPLE_RATE
        row = Table.grid(padding=(0, 1))
        # The bar gives way on a narrow terminal: borders, padding, the "Voice" column and
        # "40 s left" take about 22 columns.
        bar = max(5, min(HOLD_BAR_WIDTH, width - 22))
        row.add_row(ProgressBar(total=length, completed=done, width=bar),
                    Text(f"{left:.0f} s left" if at >= section.hold_start else f"{left:g} s, coming up"))
        return row

    def _label(self, index: int) -> str:
        labels = self.labels if self.labels is not None else [s.label for s in self.timeline.sections]
        return labels[index] if index < len(labels) else "closing words"

    def _next(self, section: Section | None, closing: bool) -> str:
        if closing:
            return "end of the session"
        if section is None:
            return self._label(0 if self.intro else 1)
        return self._label(section.index + 1)
