"""Where things live: the shipped checkpoints inside the package, the user's data folder."""
from __future__ import annotations

import os
from pathlib import Path

# The shipped checkpoints travel inside the package: pyproject.toml installs the source
# tree's checkpoints/ as neuralplay/checkpoints.
PACKAGE_DIR = Path(__file__).resolve().parent
HOME_ENV = "NEURALPLAY_HOME"


def shipped_checkpoints() -> Path:
    """The folder of shipped checkpoints: the installed package's, else the source tree's."""
    installed = PACKAGE_DIR / "checkpoints"
    if installed.is_dir():
        return installed
    return PACKAGE_DIR.parent / "checkpoints"


def user_data_dir() -> Path:
    """The user's neuralplay folder (data sets, recordings, training runs).

    NEURALPLAY_HOME redirects it, for tests and for people who keep data elsewhere.
    """
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override)
    from platformdirs import PlatformDirs

    return Path(PlatformDirs("neuralplay").user_data_dir)
