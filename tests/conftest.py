"""Every test runs with its own settings folder and a shared speech cache, never the user's."""

from __future__ import annotations

import pytest


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
