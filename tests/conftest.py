import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny models: threads only add overhead

import pytest


@pytest.fixture(autouse=True)
def user_home(tmp_path, monkeypatch):
    """Every test gets its own user data folder."""
    monkeypatch.setenv("NEURALPLAY_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
