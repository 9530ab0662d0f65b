"""Where things live: the shipped checkpoints inside the package, the user's data folder."""
from __future__ import annotations

import os
from pathlib import Path

# The shipped checkpoints travel inside the package (neuralplay/checkpoints -> ../checkpoints
# in a source tree is the same folder: see pyproject.toml).
PACKAGE_DIR = Path(__file__).resolve().parent
HOME_ENV = "NEURALPLAY_HOME"


def shipped_checkpoints() -> Path:
    """The folder of shipped checkpoints: in the source tree or the installed package."""
    source_tree = PACKAGE_DIR.parent / "checkpoints"
    if source_tree.is_dir():
        return source_tree
    return PACKAGE_DIR / "checkpoints"


def user_data_dir() -> Path:
    """The user's neuralplay folder (data sets, recordings, training runs).

    NEURALPLAY_HOME redirects it, for tests and for people who keep data elsewhere.
    """
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override)
    from platformdirs import PlatformDirs

    return Path(PlatformDirs("neuralplay").user_data_dir)
