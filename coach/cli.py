"""The `coach` command: parse options, call the core, turn CoachError into one line.

Nothing here knows TOML, audio or timing rules; every command is a thin client of the
library, so anything it does can also be done from Python.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import io
import os
import shlex
import shutil
import signal
import sys


def _started_as_command() -> bool:
    """True in the `coach` command (console script or `python -m coach`), not when imported
    by a program such as pytest, whose signal handling must stay its own."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return getattr(spec, "name", None) == "coach.__main__" or \
        os.path.basename(getattr(main, "__file__", None) or "") == "coach"


def _stop_before_work(signum, frame) -> None:
    # Ctrl-C, SIGTERM, SIGHUP or SIGQUIT while Python is still importing typer and numpy (a few tenths of a
    # second): nothing has started and nothing is written, so leave at once with the usual
    # code. Not by raising: an exception raised here can land in the import machinery's own
    # clean-up, which prints it as "Exception ignored" and carries on with the command.
    os._exit(128 + signum)


if _started_as_command():  # before the slow imports below
    for _sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None), getattr(signal, "SIGQUIT", None)):
        if _sig is not None and signal.getsignal(_sig) is not signal.SIG_IGN:  # nohup's SIGHUP stays ignored
            signal.signal(_sig, _stop_before_work)
    # numpy's OpenBLAS starts a thread per core as it is imported: about 60 ms of CPU and 45 ms
    # of every start here. coach does no large matrix work (a few dot products of one signal),
    # so one thread does. Only when unset: a user's own choice stays; helper processes inherit it.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # Typer's help panels cut the option names short below about 60 columns ("--…"); click's
    # plain help wraps them instead. Typer reads TYPER_USE_RICH as it loads (the early helper may load it).
    _plain_help = "TYPER_USE_RICH" not in os.environ and shutil.get_terminal_size().columns < 60
    if _plain_help:
        os.environ["TYPER_USE_RICH"] = "0"
    if sys.argv[1:2] == ["export"]:  # a cold export's helper process, before typer and numpy load
        from coach import early_helper

        early_helper.start_for_command_line(sys.argv[1:])

from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from typing import Annotated, Optional  # noqa: E402

import typer  # noqa: E402

if _started_as_command() and _plain_help:
    del os.environ["TYPER_USE_RICH"]  # not for the programs coach starts

from coach import __version__, signals
from coach.errors import CoachError, OutputError, UnknownVoiceError, UsageError, one_line, shown_name
from coach.lazy_modules import load_on_first_use

app = typer.Typer(
    name="coach",
    help="A voice-guided audio coach for stretching and yoga. Lie down, close your eyes, follow the voice.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion; bench/bench_completion.py measures the cost
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Show or change your saved settings (speed, voice, engine, volume, countdown, guidance). Example: coach config set speed 0.85",
                         no_args_is_help=True)
app.add_typer(config_app, name="config")
cache_app = typer.Typer(help="See or empty the speech cache (synthesized clips kept so sessions start at once). Example: coach cache show",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")



def complete_routine(incomplete: str) -> list[str]:
    """Shell completion: the routine names that start with what is typed (a file glob, no parsing)."""
    from coach.routine import available_routines

    return [name for name in available_routines() if name.startswith(incomplete)]


def complete_voice(incomplete: str) -> list[str]:
    """Shell completion: voice ids of the default engine that start with what is typed."""
    try:
        from coach.speech import list_voices

        return [v.id for v in list_voices() if v.id.startswith(incomplete)]
    except Exception:  # completion must never print a traceback into the user's shell
        return []


ROUTINE_HELP = "Routine name (see `coach list`) or path to a .toml file. Default: the built-in leg-stretches."
RoutineArg = Annotated[Optional[str], typer.Argument(help=ROUTINE_HELP, show_default=False,
                                                     autocompletion=complete_routine)]
SpeedOpt = Annotated[Optional[float], typer.Option("--speed", "-s", help="Voice speed, 0.5 (slow) to 2.0 (fast); 1.0 is normal.", show_default=False)]
VoiceOpt = Annotated[Optional[str], typer.Option("--voice", help="Voice id or name (see `coach voices`).", show_default=False, autocompletion=complete_voice)]
EngineOpt = Annotated[Optional[str], typer.Option("--engine", help="Speech engine: espeak or piper.", show_default=False)]
HoldOpt = Annotated[Optional[float], typer.Option("--hold", help="Hold every pose (and rest) this many seconds, 1 to 3600, instead of the routine's holds.", show_default=False)]
SideOpt = Annotated[Optional[str], typer.Option("--side", help="Side to start with: one of the routine's sides (coach show lists them), e.g. left.", show_default=False)]
CountdownOpt = Annotated[Optional[int], typer.Option("--countdown", help="Count the last N seconds of each hold aloud, 0 (off) to 10.", show_default=False)]
GuidanceOpt = Annotated[Optional[str], typer.Option("--guidance", help="How much is said: full, brief (no detail cues) or minimal (pose names, sides, chimes, releases).", show_default=False)]
MinutesOpt = Annotated[Optional[float], typer.Option("--minutes", "-m", help="Make the session last this many minutes (holds scaled within min_hold and max_hold).", show_default=False)]
VolumeOpt = Annotated[Optional[float], typer.Option("--volume", help="Loudness of the whole session, 0.0 to 1.0.", show_default=False)]


def version_callback(value: bool) -> None:
    if value:
        with user_errors():
            write_output(f"coach {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """A voice-guided audio coach for stretching and yoga."""


def fail(message: str, code: int = 1) -> None:
    _to_stderr(f"Error: {one_line(message)}", fg="red")
    raise typer.Exit(code=code)


# ---------------------------------------------------------------------------
# Output. Every command writes what it prints through write_output, the one place stdout is
# written: a full disk, an I/O error or a closed stdout is one line on stderr and exit 1.

_stdout_gone = False  # the reader went away (`| head -1`): the rest of the output goes nowhere


def write_output(text: str, end: str = "\n") -> None:
    """`text` on stdout, as UTF-8 whatever the locale says, flushed at once.

    A reader that went away ends the output quietly; any other failure is an OutputError.
    """
    global _stdout_gone
    if _stdout_gone:
        return
    stream = sys.stdout
    if stream is None:  # started with stdout closed (`>&-`)
        raise OutputError(_output_failure(None))
    try:
        buffer = getattr(stream, "buffer", None)
        if buffer is None:
            stream.write(text + end)
            stream.flush()
        else:
            stream.flush()
            # surrogateescape: a file name that is not UTF-8 comes back out as the bytes it is.
            view = memoryview((text + end).encode("utf-8", "surrogateescape"))
            while view:  # under `python -u` a raw write may take only part of it
                view = view[buffer.write(view) or 0:]
            buffer.flush()
    except BrokenPipeError:
        _stdout_gone = True
        _discard(stream)
    except (OSError, ValueError) as err:  # ValueError: the stream was closed
        _discard(stream)
        raise OutputError(_output_failure(err)) from None


def _output_failure(err: BaseException | None) -> str:
    code = getattr(err, "errno", None)
    if err is None or code == errno.EBADF or isinstance(err, ValueError):
        return ("cannot write to standard output: it is closed; run the command with its output going "
                "to a terminal, a file or a pipe")
    if code == errno.ENOSPC:
        return "cannot write to standard output: no space left on device; free some space or send the output elsewhere"
    if code == errno.EIO:
        return "cannot write to standard output: input/output error (did the terminal close?)"
    return f"cannot write to standard output: {getattr(err, 'strerror', None) or err}"


def _discard(stream) -> None:
    from coach.files import discard_stream  # only on a failure: coach.files imports tempfile

    discard_stream(stream)


def _to_stderr(line: str, **style) -> None:
    """One line on stderr; if stderr itself is gone (closed, full, a hung-up terminal), nothing.
    Without colour when NO_COLOR is set (no-color.org), as rich does for the help and tables."""
    if os.environ.get("NO_COLOR"):
        style = {"reset": False}  # no colour, and no reset code after it either
    try:
        typer.secho(line, err=True, **style)
    except (OSError, ValueError):
        _discard(sys.stderr)


def _is_terminal(stream) -> bool:
    try:  # None when started with it closed (`2>&-`, as some daemons and cron set-ups do)
        return stream is not None and stream.isatty()
    except ValueError:  # closed meanwhile
        return False


@contextmanager
def user_errors(voice_origin: Callable[[str], str | None] | None = None) -> Iterator[None]:
    """CoachError -> one red line and its exit code; Ctrl-C, SIGTERM, SIGHUP, SIGQUIT -> 130/143/129/131, no traceback.
    voice_origin(name): where an unknown voice's name came from, said before the error."""
    try:
        with signals.as_exceptions():
            signals.raise_if_stopped()  # one that came while the command imported what it needs
            yield
            signals.raise_if_stopped()  # one whose exception Python dropped on the way
    except CoachError as err:
        stop = signals.recorded_stop()  # an error on the way out of a stop is the stop
        if stop is not None:
            raise typer.Exit(code=_stopped(stop)) from None
        message, code = str(err), err.exit_code
        if isinstance(err, UnknownVoiceError) and voice_origin is not None:
            with contextlib.suppress(CoachError, OSError):
                where = voice_origin(err.voice)
                message = f"{where}: {message}" if where else message
                code = UsageError.exit_code if where == "--voice" else code  # a mistake on the command line
        fail(message, code)
    except (typer.Exit, SystemExit):
        raise
    except BaseException as err:
        stop = signals.stop_behind(err) or signals.recorded_stop()
        if stop is None:
            raise
        raise typer.Exit(code=_stopped(stop)) from None


_stop_reported = False


def _mark_reported() -> None:
    global _stop_reported
    _stop_reported = True
    signals.forget()


def _stopped(stop: BaseException) -> int:
    """Say that the command was stopped and return the exit code for it."""
    _mark_reported()
    said = f"Stopped ({stop.reason})." if isinstance(stop, signals.Terminated) else "Stopped."
    _say_if_possible(said)
    return signals.exit_code(stop)


def _say_if_possible(line: str) -> None:
    # After SIGHUP the terminal is gone: writing to it fails (EIO), and that must not turn a
    # clean stop into a traceback.
    _to_stderr(line)


def _progress(label: str) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A progress bar on stderr when it is a terminal; otherwise nothing."""
    if not _is_terminal(sys.stderr):
        return _check_for_stop, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(label), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                   TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    task = bar.add_task(label, total=1)
    bar.start()

    def update(done: int, total: int) -> None:
        _check_for_stop(done, total)
        bar.update(task, completed=done, total=max(total, 1))

    return update, bar.stop


def _check_for_stop(done: int, total: int) -> None:
    # Called for every clip and every stretch of audio written: a stop whose exception
    # Python dropped (see coach/signals.py) still ends the work within moments.
    signals.raise_if_stopped()


def _session(routine_name, speed, voice, engine, hold, side, countdown, volume=None, guidance=None,
             minutes=None, *, every_warning=False, loaded=None):
    """The built session; `loaded`: the routine already read from routine_name, if it was."""
    from coach.routine import load_routine
    from coach.session import build_session, resolve_options
    from coach.settings import load_settings

    routine = loaded if loaded is not None else load_routine(routine_name)
    signals.raise_if_stopped()  # a signal while the modules above loaded
    options = resolve_options(routine, load_settings(), speed=speed, voice=voice, engine=engine,
                              volume=volume, hold=hold, side=side, countdown=countdown,
                              guidance=guidance, minutes=minutes)
    update, done = _progress("Preparing speech")
    try:
        session = build_session(routine, options, progress=update)
    finally:
        done()
    warnings = session.timeline.warnings
    if len(warnings) > 2 and not every_warning:
        # A short --hold can leave out every cue: one line, and `coach plan` names each one.
        _to_stderr(f"Warning: {len(warnings)} cues or countdowns left out: they do not fit the holds at this "
                    "length and speed; `coach plan` with the same options lists them", fg="yellow")
        warnings = ()
    for warning in warnings:
        _to_stderr(f"Warning: {warning}", fg="yellow")
    return session


def _live_session(routine_name, speed, voice, engine, hold, side, countdown, volume, guidance, from_pose):
    """A session that starts playing with its first utterance, its speech synthesized meanwhile
    (from the --from pose on, when given); cues that do not fit are reported as the timeline
    reaches them."""
    from coach.routine import load_routine
    from coach.settings import load_settings
    from coach.speech.registry import start_early

    routine = load_routine(routine_name)
    signals.raise_if_stopped()  # a signal while the modules above loaded
    _start_engine_early(routine, engine, voice, speed, load_settings, start_early)
    from coach.session import resolve_options, start_live_session

    options = resolve_options(routine, load_settings(), speed=speed, voice=voice, engine=engine,
                              volume=volume, hold=hold, side=side, countdown=countdown, guidance=guidance)
    return start_live_session(routine, options, from_pose=from_pose)


def _voice_origin(routine_name: str | None, flag: str | None) -> Callable[[str], str | None]:
    """Where a session's voice name came from (the flag, the routine, the settings), for an
    unknown voice's error: the same order as resolve_options."""

    def where(voice: str) -> str | None:
        from coach.routine import load_routine
        from coach.settings import config_path, load_settings

        if flag is not None and flag.strip() == voice:
            return "--voice"
        routine = load_routine(routine_name)
        if routine.voice is not None and routine.voice.strip() == voice:
            return f"the routine's voice ([defaults] voice in {routine.source or routine.name})"
        saved = load_settings().voice
        if saved is not None and saved.strip() == voice:
            return f"your saved voice (in {config_path()}; change it with `coach config set voice NAME`)"
        return None

    return where


def _start_engine_early(routine, engine, voice, speed, load_settings, start_early) -> None:
    """Piper's voice model loads on a thread while the session's modules are imported, when the
    routine's first line is not cached. The options are guessed as resolve_options would
    choose them (flag, routine, settings); a wrong guess only loses the head start."""
    try:
        saved = load_settings()
    except CoachError:
        return  # reported by resolve_options, in its usual place
    first_text = routine.intro[0] if routine.intro else None
    first_speed = next((s for s in (speed, routine.speed, saved.speed) if s is not None), 1.0)
    start_early(engine or saved.engine, voice or routine.voice or saved.voice,
                (first_text, first_speed) if first_text and "{" not in first_text else None)


def clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


def precise_clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


@app.command()
def validate(
    routines: Annotated[list[str], typer.Argument(help="Routine names or .toml files to check.",
                                                  autocompletion=complete_routine)],
) -> None:
    """Check routine files and summarise them. Example: coach validate cues/mine.toml"""
    from coach.routine import load_routine
    from coach.session import load_routine_chimes

    failed = 0
    with user_errors():
        for name in routines:
            try:
                routine = load_routine(name)
                load_routine_chimes(routine)
                _check_routine_voice(routine)
            except CoachError as err:
                _to_stderr(f"Error: {err}", fg="red")
                failed += 1
                continue
            sides = ", ".join(routine.all_sides) or "no sides"
            write_output(f"ok  {routine.source}: {routine.title!r}, {poses_and_rests(routine)}, "
                         f"sides: {sides}, total hold {clock(routine.total_hold_seconds)}")
    if failed:
        raise typer.Exit(code=1)


def _check_routine_voice(routine) -> None:
    """The routine's own voice and language, checked as `plan` and `start` will meet them: with
    the saved speech engine (espeak when none is saved). Skipped when that engine does not
    start here: the file may be right for another machine, and `start` says what is missing."""
    if routine.voice is None and routine.language is None:
        return
    from coach.errors import SettingsError, SpeechError, UnknownVoiceError
    from coach.session import resolve_options
    from coach.settings import Settings, load_settings
    from coach.speech import get_engine, resolve_voice

    try:
        settings = load_settings()
    except SettingsError:
        settings = Settings()  # the routine is what is being checked; `plan` reports the settings
    engine = settings.engine
    try:
        get_engine(engine)
    except SpeechError:
        return
    where = routine.source or routine.name
    if routine.voice is not None:
        try:
            resolve_voice(routine.voice, engine)
        except UnknownVoiceError as err:
            raise UnknownVoiceError(f"the routine's voice ([defaults] voice in {where}): {err}", err.voice) from None
    if routine.language is not None:
        resolve_options(routine, settings)  # finds a voice for the language, or says which it has


@app.command("list")
def list_routines() -> None:
    """List the built-in routines and yours: title, length, poses, props. Example: coach list"""
    from coach.length import estimate_seconds
    from coach.routine import available_routines, load_routine, user_cues_dir
    from coach.settings import settings_folder_problem
    from coach.timeline import TimelineOptions

    with user_errors():
        found = available_routines()
        if not found:
            write_output("No routines found.")
        rows = [("NAME", "TITLE", "LENGTH*", "POSES", "PROPS")]
        for name, path in found.items():
            try:
                routine = load_routine(path)
            except CoachError as err:
                rows.append((name, f"(invalid: {one_line(str(err))})", "", "", ""))
                continue
            seconds = estimate_seconds(routine, TimelineOptions(speed=routine.speed or 1.0))
            rows.append((name, routine.title, f"~{clock(seconds)}", str(pose_count(routine)),
                         ", ".join(routine.props) or "-"))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            write_output("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
        write_output("* an estimate, at the routine's own speed (or 1.0) with full guidance, from the number of "
                     "words; `coach plan NAME` gives the exact length.")
        yours = user_cues_dir()
        problem = settings_folder_problem(yours)
        if problem:
            _to_stderr(f"Warning: your own routines cannot be kept: {problem}", fg="yellow")
        else:
            write_output(f"Your own routines go in {yours} (`coach new NAME` starts one).")


def pose_count(routine) -> int:
    return sum(1 for p in routine.poses if not p.rest)


def poses_and_rests(routine) -> str:
    """ "3 poses and 1 rest", "1 pose" """
    poses = pose_count(routine)
    rests = len(routine.poses) - poses
    text = f"{poses} pose{'' if poses == 1 else 's'}"
    rest_text = f"{rests} rest{'' if rests == 1 else 's'}"
    if not poses and rests:  # a routine that is only a rest: "1 rest", not "0 poses and 1 rest"
        return rest_text
    return text + (f" and {rest_text}" if rests else "")


@app.command()
def show(routine: RoutineArg = None) -> None:
    """Describe a routine: what it is, its credit, props and each pose with its hold. Example: coach show lower-back"""
    from coach.length import estimate_seconds
    from coach.routine import load_routine
    from coach.timeline import TimelineOptions

    with user_errors():
        found = load_routine(routine)
        speed = found.speed or 1.0
        # The routine as it was named here: a file outside the routine folder is not found by
        # its bare name.
        again = found.name if routine is None else shlex.quote(routine)
        write_output(f"{found.title}  ({found.name}: {found.source})")
        for label, value in (("About", found.description), ("Credit", found.credit),
                             ("Props", ", ".join(found.props)), ("Language", found.language or "")):
            if value:
                write_output(f"{label}: {value}")
        write_output(f"Length: about {clock(estimate_seconds(found, TimelineOptions(speed=speed)))} at speed "
                     f"{speed:g} (an estimate; `coach plan {again}` gives the exact length), "
                     f"{poses_and_rests(found)}")
        write_output("")
        rows = []
        for number, pose in enumerate(found.poses, 1):
            sides = found.sides_of(pose)
            done = ", ".join(sides) if sides else "once"
            hold = f"{pose.hold:g} s" + (" each side" if len(sides) > 1 else "")
            kind = "rest" + ("" if pose.chimes else ", no chimes") if pose.rest else (pose.targets or "")
            rows.append((str(number), pose.name, done, hold, kind))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            write_output("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="Name of the new routine, e.g. evening-hips (letters, digits, - and _).")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite a routine of that name.")] = False,
) -> None:
    """Write a commented starter routine into your routine folder and print its path. Example: coach new evening-hips"""
    from coach.routine.library import builtin_cues_dir
    from coach.routine.starter import write_starter_routine

    with user_errors():
        path = write_starter_routine(name, force=force)
        write_output(str(path))
        _to_stderr(f"Edit it, then check it with `coach validate {path.stem}` and play it with "
                   f"`coach start {path.stem}`.")
        builtin = builtin_cues_dir() / path.name
        if builtin.is_file():
            _to_stderr(f"Note: a built-in routine has this name too: `coach start {path.stem}` now plays yours; "
                       f"the built-in one is still {builtin} (remove yours to get it back by name).")


@app.command()
def plan(
    routine: RoutineArg = None,
    speed: SpeedOpt = None,
    voice: VoiceOpt = None,
    engine: EngineOpt = None,
    hold: HoldOpt = None,
    side: SideOpt = None,
    countdown: CountdownOpt = None,
    guidance: GuidanceOpt = None,
    minutes: MinutesOpt = None,
) -> None:
    """Show the session as a table with real timings. Example: coach plan --minutes 10"""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    with user_errors(_voice_origin(routine, voice)):
        session = _session(routine, speed, voice, engine, hold, side, countdown, None, guidance, minutes,
                           every_warning=True)
        # Text cells: a routine's words are shown as written, never read as rich markup ("[/]").
        table = Table(title=Text(session.routine.title), show_lines=False, expand=False)
        for column in ("start", "side", "pose", "event", "text"):
            table.add_column(column, overflow="fold")
        for event in session.timeline.events:
            label = {"speech": "speech", "chime": f"chime: {event.part.replace('_', ' ')}",
                     "hold": f"{event.part} {event.duration_s:g} s"}[event.kind]
            text = "" if event.kind != "speech" else event.text
            table.add_row(precise_clock(event.start_s), Text(event.side or ""), Text(event.pose or ""), label,
                          Text(text))
        terminal = _is_terminal(sys.stdout)
        console = Console(file=io.StringIO(), force_terminal=terminal,
                          width=shutil.get_terminal_size().columns if terminal else 160)
        console.print(table)
        if minutes is not None:
            chosen = ", ".join(f"{p.name} {p.hold:g} s" for p in session.routine.poses)
            console.print(f"Holds chosen for {minutes:g} minutes: {chosen}", markup=False, highlight=False)
        console.print(f"Total length: {clock(session.timeline.length_s)} "
                      f"({session.timeline.length_s:.1f} s) at speed {session.options.speed:g}")
        write_output(console.file.getvalue(), end="")


@app.command()
def export(
    output: Annotated[str, typer.Option("--output", "-o", help="File to write, or - for stdout (text formats; txt unless --format says otherwise).")],
    routine: RoutineArg = None,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="wav, m4a, mp3, opus, html (the session page), txt, md, srt, vtt or json; default: from the file suffix.", show_default=False)] = None,
    bitrate: Annotated[Optional[str], typer.Option("--bitrate", "-b", help="For m4a, mp3, opus and html, e.g. 64k (for mp3 a constant bitrate instead of VBR); default: AAC 48k, MP3 VBR V5, Opus 24k.", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    speed: SpeedOpt = None,
    voice: VoiceOpt = None,
    engine: EngineOpt = None,
    hold: HoldOpt = None,
    side: SideOpt = None,
    countdown: CountdownOpt = None,
    volume: VolumeOpt = None,
    guidance: GuidanceOpt = None,
    minutes: MinutesOpt = None,
) -> None:
    """Write the session to a file: audio, script or captions. Example: coach export -o session.wav --speed 0.9"""
    from coach import early_helper

    # A cold export's helper process, before the slow imports below; the routine it read.
    loaded = early_helper.start_early(routine, engine)
    from coach.export import STDOUT, check_output, render_text, suffix_disagrees, write_export

    with user_errors(_voice_origin(routine, voice)):
        fmt = check_output(output, fmt, force, bitrate)
        disagreement = suffix_disagrees(output, fmt)
        if disagreement:
            _to_stderr(f"Warning: {disagreement}", fg="yellow")
        session = _session(routine, speed, voice, engine, hold, side, countdown, volume, guidance, minutes,
                           loaded=loaded)
        if output == STDOUT:
            write_output(render_text(session, fmt), end="")
            return
        label = {"wav": "Writing audio", "m4a": "Encoding audio", "mp3": "Encoding audio",
                 "opus": "Encoding audio", "html": "Encoding audio"}.get(fmt)
        update, done = _progress(label) if label else (None, lambda: None)
        try:
            write_export(session, output, fmt, force=force, bitrate=bitrate, progress=update)
        finally:
            done()
        _to_stderr(f"Wrote {shown_name(str(output))} ({fmt}, {clock(session.timeline.length_s)})")


@app.command()
def start(
    routine: RoutineArg = None,
    speed: SpeedOpt = None,
    voice: VoiceOpt = None,
    engine: EngineOpt = None,
    hold: HoldOpt = None,
    side: SideOpt = None,
    from_pose: Annotated[Optional[str], typer.Option("--from", help='Start at a pose: its number or name, optionally with a side, e.g. "2" or "leg across:left".', show_default=False)] = None,
    countdown: CountdownOpt = None,
    volume: VolumeOpt = None,
    guidance: GuidanceOpt = None,
    minutes: MinutesOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live display: one plain line per event.")] = False,
    require_audio: Annotated[bool, typer.Option("--require-audio", help="Fail (exit 3) instead of continuing as captions when no sound device can be opened.")] = False,
    audio_backend: Annotated[Optional[str], typer.Option("--audio-backend", help="miniaudio (the default: sounds placed by the device's clock) or simpleaudio (a stream per sound; Python 3.11 only).", show_default=False)] = None,
) -> None:
    """Play a routine now: spoken cues and chimes, on time. Example: coach start --speed 0.85 --hold 40

    Keys while it plays: space pause, n next, b back, -/+ speed, 9/0 volume, h keys aloud, q quit.
    """
    with user_errors(_voice_origin(routine, voice)):
        # The live player's modules (and the sound device's) are imported after the session
        # has begun: Piper's voice model then loads on its thread meanwhile (_live_session).
        if minutes is None:
            session = _live_session(routine, speed, voice, engine, hold, side, countdown, volume, guidance,
                                    from_pose)
            from_pose = None  # the live session begins there already
        else:  # fitting the holds to a length needs every clip first
            session = _session(routine, speed, voice, engine, hold, side, countdown, volume, guidance, minutes)
        from coach.live import SessionStopped, run_live

        try:
            run_live(session, from_pose=from_pose, quiet=quiet, require_audio=require_audio,
                     backend=audio_backend)
        except SessionStopped as stop:
            _mark_reported()
            _say_if_possible(stop.message)
            raise typer.Exit(code=stop.exit_code) from None


@app.command()
def voices(engine: EngineOpt = None) -> None:
    """List the voices of every installed speech engine (or of one). Example: coach voices --engine espeak"""
    from coach.speech import list_all_voices, list_voices

    with user_errors():
        if engine is not None:
            from coach.settings import check_value
            try:
                check_value("engine", engine)
            except CoachError as err:  # a mistake on the command line, as in `coach start --engine`
                raise UsageError(f"--{err}") from None
        found, unavailable = (list_voices(engine), {}) if engine else list_all_voices()
        for v in found:
            write_output(f"{v.engine:7} {v.id:28} {v.name:32} {', '.join(v.languages)}")
        for name, reason in unavailable.items():
            _to_stderr(f"{name}: not available ({reason})", fg="yellow")


@config_app.command("show")
def config_show() -> None:
    """Show your saved settings and where they are stored. Example: coach config show"""
    from dataclasses import asdict

    from coach.settings import config_path, load_settings

    with user_errors():
        settings = load_settings()
        write_output(f"# {config_path()}")
        for key, value in asdict(settings).items():
            write_output(f"{key} = {value if value is not None else '(engine default)'}")


# A value such as -1 is the value, not an unknown option (the setting's own check refuses it).
@config_app.command("set", context_settings={"ignore_unknown_options": True})
def config_set(
    key: Annotated[str, typer.Argument(help="speed, voice, engine, volume, countdown or guidance")],
    value: Annotated[str, typer.Argument(help="The new value, e.g. 0.85")],
) -> None:
    """Save a setting for every session. Example: coach config set speed 0.85"""
    from coach.settings import config_path, set_setting

    with user_errors():
        if key == "voice":  # one the engine has, or one line now rather than at every session
            from coach.settings import load_settings
            from coach.speech.voices import resolve_voice

            resolve_voice(value.strip(), load_settings().engine)
        settings = set_setting(key, value)
        write_output(f"{key} = {getattr(settings, key)}  (saved in {config_path()})")


@config_app.command("reset")
def config_reset() -> None:
    """Forget every saved setting (also repairs a broken settings file). Example: coach config reset"""
    from coach.settings import reset_settings

    with user_errors():
        path, removed = reset_settings()
        write_output(f"Settings reset ({path} removed)." if removed else f"No saved settings to reset ({path} does not exist).")


@cache_app.command("show")
def cache_show() -> None:
    """Where the speech cache is and how much it holds. Example: coach cache show"""
    from coach.speech import SpeechCache, cache_dir

    with user_errors():
        cache = SpeechCache(cache_dir())
        count, size = cache.usage()
        write_output(f"# {cache.directory}")
        write_output(f"{count} clips, {megabytes(size)}")


@cache_app.command("clear")
def cache_clear() -> None:
    """Delete every cached clip; the next session synthesizes its speech again. Example: coach cache clear"""
    from coach.speech import SpeechCache, cache_dir

    with user_errors():
        cache = SpeechCache(cache_dir())
        count, size = cache.clear()
        write_output(f"Removed {count} clips ({megabytes(size)}) from {cache.directory}.")


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def main() -> None:
    global _exit_status
    if _started_as_command():  # not in a program that calls main(), such as a test runner
        # Registered first, so it runs last of the exit functions (after _stop_at_exit).
        atexit.register(_end_past_a_running_engine)
    try:
        _main()
    except SystemExit as done:
        code = done.code
        _exit_status = 0 if code is None else code if isinstance(code, int) else 1
        raise


_exit_status = 1  # the code the command is exiting with, once it is known


def _end_past_a_running_engine() -> None:
    """A speech engine still making a clip on its thread (stopping waits 10 s for it: a long
    Piper clip on a loaded machine takes longer) would be cut off by Python's shutdown, and
    onnxruntime then aborts the process (SIGABRT, exit 134, "terminate called without an
    active exception") instead of the exit code the command chose. Ends it here instead,
    past that shutdown; every exit function has run, and the output is flushed."""
    ahead = sys.modules.get("coach.speech.ahead")
    if ahead is None or not ahead.engine_still_running():
        return
    _flush_standard_streams()
    os._exit(_exit_status)


def _main() -> None:
    # From here on Ctrl-C and SIGTERM raise exceptions, so clean-up code runs. Inside a
    # command user_errors() reports them; this catches one that comes while typer parses the
    # command line or a command imports what it needs, and one whose exception was lost.
    signals.install()
    sys.unraisablehook = _quiet_about_stops(sys.unraisablehook)
    quiet_hook = _quiet_about_a_late_stop(sys.excepthook)
    atexit.register(_stop_at_exit)
    # atexit runs the last registered first. These two are C functions: no Python code runs
    # between them where a handler could raise, so _stop_at_exit starts with the stopping
    # signals blocked in this thread and the handlers only recording (see _stop_at_exit).
    if hasattr(signal, "pthread_sigmask"):
        atexit.register(signal.pthread_sigmask, signal.SIG_BLOCK, _STOPPING)
    atexit.register(signals.only_record_from_now, True)
    _hold_closed_descriptors()
    # typer shows a command-line mistake as usage, a hint and a boxed message: one line instead.
    load_on_first_use("typer.rich_utils", _one_line_usage_errors)
    try:
        try:
            app()  # ends by SystemExit, always (typer's standalone mode)
        finally:
            # typer put its own hook in while the command ran; no check for a signal comes
            # between the entry to this block and this store, so the hook is in time.
            sys.excepthook = quiet_hook
    except SystemExit:
        stop = signals.recorded_stop()
        if stop is None or _stop_reported:
            raise
        sys.exit(_stopped(stop))
    except BaseException as err:
        stop = signals.stop_behind(err) or signals.recorded_stop()
        if stop is not None:
            sys.exit(_stopped(stop))
        if isinstance(err, CoachError):  # from typer's own output (--help) or an option callback
            _to_stderr(f"Error: {one_line(str(err))}", fg="red")
            sys.exit(err.exit_code)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EIO, errno.EBADF):
            _discard(sys.stdout)
            _to_stderr(f"Error: {_output_failure(err)}", fg="red")
            sys.exit(1)
        raise


def _one_line_usage_errors(rich_utils) -> None:
    """typer.rich_utils, just loaded (for help or for a mistake on the command line): its
    mistakes become one `Error:` line, with where to find the right usage."""

    def one_line_error(error) -> None:
        if type(error).__name__ == "NoArgsIsHelpError":  # the help was shown instead
            return
        context = getattr(error, "ctx", None)
        hint = f" (see `{context.command_path} --help`)" if context is not None else ""
        _to_stderr(f"Error: {one_line(error.format_message())}{hint}", fg="red")

    rich_utils.rich_format_error = one_line_error

    # rich ends a help whose reader went away (`coach --help | head -1`) with exit 1; every
    # other command's output ends quietly with 0 there (write_output).
    make_console = rich_utils._get_rich_console

    def help_console(stderr: bool = False):
        console = make_console(stderr=stderr)
        console.on_broken_pipe = _help_reader_gone
        return console

    rich_utils._get_rich_console = help_console


def _help_reader_gone() -> None:
    global _stdout_gone
    _stdout_gone = True
    _discard(sys.stdout)
    raise SystemExit(0)


def _hold_closed_descriptors() -> None:
    # Started with stdin, stdout or stderr closed (`>&-`): the next file opened would get that
    # number, and whatever is written to "stdout" (by a speech engine, say) would land in an
    # output file. Hold each closed one with /dev/null; sys.stdout stays None, so a command's
    # output still fails with one clear line.
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            with contextlib.suppress(OSError):
                held = os.open(os.devnull, os.O_RDWR)
                if held != fd:
                    os.dup2(held, fd)
                    os.close(held)


def _quiet_about_stops(report_unraisable):
    """Python prints "Exception ignored in ..." for an exception it has to drop (in the import
    machinery's clean-up, an atexit callback, a __del__). A stop dropped there is recorded and
    taken up at the next check, so it is no news for the terminal; anything else still is."""

    def hook(unraisable) -> None:
        if unraisable.exc_value is None or signals.stop_behind(unraisable.exc_value) is None:
            report_unraisable(unraisable)

    return hook


def _quiet_about_a_late_stop(report_uncaught):
    """A signal in the last instants of main(), after its final look at the record, raises out
    of main() in place of its SystemExit and would print a traceback. Its handler recorded it,
    so the check at exit (_stop_at_exit) reports it with its code: no traceback for it here."""

    def hook(kind, value, trace) -> None:
        if signals.stop_behind(value) is None:
            report_uncaught(kind, value, trace)

    return hook


_STOPPING = signals.STOPPING


def _stop_at_exit() -> None:
    # The last look at the record, once the command has returned and Python is exiting.
    # It used to run with the handlers still raising: a signal in its first lines raised out
    # of it, atexit dropped the exception, and Python exited 0 although the stop was recorded
    # (the bench's lost SIGHUPs, sent in the last moments of an export). Now it runs with
    # the handlers only recording and the signals blocked in this thread (set up in main()),
    # so a signal is either recorded by its handler, or pending here, or comes after the
    # default actions are back and ends the process by itself (a shell shows the same
    # 130 / 143 / 129). None slips between the checks.
    _flush_standard_streams()
    for sig in _STOPPING:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)  # runs any handler still pending first
    if hasattr(signal, "sigpending"):
        for sig in sorted(signal.sigpending() & set(_STOPPING)):  # came while blocked: not run yet
            if signal.getsignal(sig) is not signal.SIG_IGN:
                signals.record(sig)
    _exit_if_stopped()
    if _stop_reported and hasattr(signal, "sigpending"):
        # A second Ctrl-C of the same stop, pending since the clean-up ended: the stop is
        # reported and its exit code chosen, so it is let go rather than ending the process
        # by the signal (which a parent, such as a shell script's loop, would take for its own).
        for sig in signal.sigpending() & set(_STOPPING):
            signal.signal(sig, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING)  # a signal from here on: its default action


def _exit_if_stopped() -> None:
    try:
        stop = signals.recorded_stop()
    except BaseException:  # a handler that ran just now raised here, and recorded its stop
        stop = signals.recorded_stop()
    if stop is None or _stop_reported:
        return
    code = _stopped(stop)
    _flush_standard_streams()
    os._exit(code)


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
