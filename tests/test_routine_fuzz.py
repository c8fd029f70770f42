"""Whatever it is given, the loader answers with a Routine or a one-line RoutineError.

Random bytes, TOML-looking token soup, random TOML documents (random nested tables,
lists and values, written with tomli_w), and mutations of the built-in routine (a key
deleted, a value's type changed, garbage inserted, the text cut or spliced). Any other
exception fails the test. A routine that does load must be speakable: every text fills
its placeholders for every side, within the length limits.
"""

from __future__ import annotations

import copy
import math
import tomllib

import pytest
import tomli_w
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from coach.errors import RoutineError
from coach.routine import (
    CHIME_KINDS,
    MAX_HOLD,
    MAX_TEXT_CHARS,
    MIN_HOLD,
    builtin_cues_dir,
    fill_placeholders,
    load_routine,
    load_routine_text,
)
from coach.routine.validate import _CUE_KEYS, _DEFAULT_KEYS, _POSE_KEYS, _TOP_KEYS

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BUILTIN_TEXT = (builtin_cues_dir() / "leg-stretches.toml").read_text(encoding="utf-8")
BUILTIN = tomllib.loads(BUILTIN_TEXT)
KNOWN_KEYS = sorted(set(_TOP_KEYS + _DEFAULT_KEYS + _POSE_KEYS + _CUE_KEYS + CHIME_KINDS))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def loads_or_fails_cleanly(action):
    """The Routine, or None after checking the error is a one-line RoutineError."""
    try:
        routine = action()
    except RoutineError as err:
        message = str(err)
        assert message and message.isprintable(), repr(message)  # so no "\n", no escape codes
        assert len(message) < 500, message
        return None
    check_speakable(routine)
    return routine


def check_speakable(routine) -> None:
    assert routine.title and routine.poses
    sides = routine.sides or (None,)
    for text in routine.intro + routine.outro:  # spoken as they are: no placeholder, braces unescaped
        assert text.strip() and len(text) <= MAX_TEXT_CHARS and text == " ".join(text.split())
    lines = []
    for pose in routine.poses:
        assert MIN_HOLD <= pose.hold <= MAX_HOLD and not math.isnan(pose.hold)
        assert all(c.at is None or 0 <= c.at < pose.hold for c in pose.cues)
        lines += list(pose.setup + pose.release) + [c.text for c in pose.cues]
    lines += list(routine.side_switch)
    for text in lines:
        assert text.strip() and len(text) <= MAX_TEXT_CHARS and text == " ".join(text.split())
        for side in sides:
            fill_placeholders(text, side, side)  # must not raise


# ---------------------------------------------------------------------------
# Raw input

@FUZZ
@given(raw=st.binary(max_size=3000))
def test_random_bytes(folder, raw):
    path = folder / "random.toml"
    path.write_bytes(raw)
    loads_or_fails_cleanly(lambda: load_routine(path))


TOKENS = ['[[poses]]', '[defaults]', '[chimes]', '[', ']', '{', '}', '=', ',', '.', '"', "'", '"""', '#',
          ' ', '\n', '\t', 'title', 'name', 'hold', 'cues', 'at', 'text', 'sides', 'setup', 'intro',
          '"x"', '"{side}"', '"{sid}"', '"{{"', '1', '-5', '0', '1e999', 'nan', 'inf', 'true', '1979-05-27',
          '\\u0007', '\\', '\x00', '\ufeff', 'é', '放', '9' * 50, '9' * 5000]


@FUZZ
@given(parts=st.lists(st.sampled_from(TOKENS), max_size=80))
def test_toml_looking_token_soup(parts):
    loads_or_fails_cleanly(lambda: load_routine_text("".join(parts)))


@FUZZ
@given(name=st.text(alphabet=st.characters(blacklist_characters="/"), max_size=300))
@example(name="x" * 300)  # longer than a file name may be
@example(name="bad\0name")
def test_random_routine_names(name):
    loads_or_fails_cleanly(lambda: load_routine(name))


# ---------------------------------------------------------------------------
# Random TOML documents

keys = st.sampled_from(KNOWN_KEYS + ["hodl", "pose", "x"]) | st.text(max_size=12)
# Values at the edges, drawn often: they are where parsers and formatters break.
nasty = st.sampled_from([
    10**400, -(10**20), 0, -5, 3601, math.nan, math.inf, -math.inf, 1e308, 5e-324, True, "", " ", "\x07",
    "{", "}", "{0}", "{side!r}", "{side:>9}", "{{}}", "a\nb", "\u00a0", "x" * 5000, "~nosuchuser/x.wav",
    "/dev/zero", "..", "\0", [], {}, [[[[]]]],
])
scalars = (
    nasty
    |
    st.text(max_size=40)
    | st.sampled_from(["", " ", "{side}", "{other_side}", "{sid}", "{", "}}", "Lift the {side} leg.", "a" * 700])
    | st.integers()
    | st.integers(min_value=-10**400, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.datetimes()
    | st.dates()
    | st.times()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)


def pose_tables():
    return st.dictionaries(st.sampled_from(_POSE_KEYS + ("hodl",)), values, max_size=6)


routine_shaped = st.fixed_dictionaries(
    {},
    optional={
        "title": values,
        "intro": values,
        "outro": values,
        "side_switch": values,
        "props": values,
        "defaults": st.dictionaries(st.sampled_from(_DEFAULT_KEYS + ("sidse",)), values, max_size=4) | values,
        "chimes": st.dictionaries(st.sampled_from(CHIME_KINDS), values, max_size=2) | values,
        "poses": st.lists(pose_tables(), max_size=4) | values,
    },
)


def dump(document: dict) -> str | None:
    try:
        return tomli_w.dumps(document)
    except (TypeError, ValueError):  # e.g. a value tomli_w cannot write; not the loader's business
        return None


def document_loads_or_fails_cleanly(document: dict) -> None:
    """loads_or_fails_cleanly for a TOML document, when tomli_w can write it at all."""
    text = dump(document)
    if text is not None:
        loads_or_fails_cleanly(lambda: load_routine_text(text))


@FUZZ
@given(document=st.dictionaries(keys, values, max_size=8))
def test_random_toml_documents(document):
    document_loads_or_fails_cleanly(document)


@FUZZ
@given(document=routine_shaped)
def test_random_routine_shaped_documents(folder, document):
    text = dump(document)
    if text is None:
        return
    path = folder / "shaped.toml"
    path.write_text(text, encoding="utf-8")
    loads_or_fails_cleanly(lambda: load_routine(path))


# ---------------------------------------------------------------------------
# Mutations of the built-in routine

def paths_in(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths_in(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths_in(value, prefix + (index,))


BUILTIN_PATHS = [p for p in paths_in(BUILTIN) if p]


def parent_of(document, path):
    node = document
    for step in path[:-1]:
        node = node[step]
    return node


@FUZZ
@given(data=st.data())
def test_builtin_with_a_key_deleted(data):
    document = copy.deepcopy(BUILTIN)
    path = data.draw(st.sampled_from(BUILTIN_PATHS))
    del parent_of(document, path)[path[-1]]
    loads_or_fails_cleanly(lambda: load_routine_text(dump(document)))


@FUZZ
@given(data=st.data())
def test_builtin_with_a_value_replaced(data):
    document = copy.deepcopy(BUILTIN)
    path = data.draw(st.sampled_from(BUILTIN_PATHS))
    parent_of(document, path)[path[-1]] = data.draw(values)
    document_loads_or_fails_cleanly(document)


@FUZZ
@given(data=st.data())
def test_builtin_with_garbage_inserted(data):
    document = copy.deepcopy(BUILTIN)
    tables = [p for p in paths_in(document) if isinstance(parent_of(document, p + ("x",)), dict)]
    where = parent_of(document, data.draw(st.sampled_from(tables)) + ("x",))
    where[data.draw(keys)] = data.draw(values)
    document_loads_or_fails_cleanly(document)


@FUZZ
@given(data=st.data())
def test_builtin_text_spliced(data):
    """Cut, repeat or insert characters anywhere in the file's text, as a careless edit might."""
    text = BUILTIN_TEXT
    for _ in range(data.draw(st.integers(1, 4))):
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 200)))
        action = data.draw(st.sampled_from(["cut", "repeat", "insert"]))
        if action == "cut":
            text = text[:start] + text[end:]
        elif action == "repeat":
            text = text[:end] + text[start:end] + text[end:]
        else:
            text = text[:start] + data.draw(st.text(max_size=20) | st.sampled_from(TOKENS)) + text[start:]
    loads_or_fails_cleanly(lambda: load_routine_text(text))


def test_the_mutations_do_reach_both_outcomes():
    """Guard against a fuzz test that only ever sees one kind of result."""
    assert loads_or_fails_cleanly(lambda: load_routine_text(BUILTIN_TEXT)) is not None
    broken = copy.deepcopy(BUILTIN)
    broken["poses"][1]["hold"] = "long"
    assert loads_or_fails_cleanly(lambda: load_routine_text(dump(broken))) is None
