"""Every test runs with its own settings folder and a shared speech cache, never the user's."""

from __future__ import annotations

import signal

import pytest


def pytest_configure(config):
    # A suite started in the background (`make test &`, some CI runners) or under nohup inherits
    # SIGINT, SIGQUIT or SIGHUP ignored, and so does every coach it starts; coach rightly leaves
    # an ignored signal ignored, and the tests of how it stops would fail. They test coach as a
    # terminal runs it: the suite gives itself, and so its children, the ordinary dispositions.
    for sig in (signal.SIGINT, getattr(signal, "SIGQUIT", None), getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) is signal.SIG_IGN:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)


@pytest.fixture(scope="session")
def speech_cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("speech-cache")


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path, monkeypatch, speech_cache_dir):
    config = tmp_path / "config"
    monkeypatch.setenv("COACH_CONFIG_DIR", str(config))
    monkeypatch.setenv("COACH_CACHE_DIR", str(speech_cache_dir))
    monkeypatch.setenv("COLUMNS", "200")  # stable rich tables and help
    return config


@pytest.fixture
def cold_cache(tmp_path, monkeypatch):
    """An empty speech cache for this test only."""
    path = tmp_path / "speech-cache"
    monkeypatch.setenv("COACH_CACHE_DIR", str(path))
    return path
