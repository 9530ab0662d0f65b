"""neuralplay: games whose every frame is produced by a neural network.

Importing the package registers its gymnasium envs: `neuralplay/Tetris-v0` (the real
engine), `neuralplay/NeuralTetris-v0` (the world model, same spaces) and
`neuralplay/NeuralSkiing-v0` (the Skiing world model, the spaces of `ALE/Skiing-v5`).
"""
__version__ = "0.1.0"


def _register_envs() -> None:
    try:
        from gymnasium.envs.registration import register, registry
    except ImportError:  # gymnasium is a dependency; be quiet if a stripped install lacks it
        return
    envs = {
        "neuralplay/Tetris-v0": ("neuralplay.games.tetris_env:TetrisEnv", None),
        "neuralplay/NeuralTetris-v0": ("neuralplay.runtime.tetris_env:NeuralTetrisEnv", None),
        "neuralplay/NeuralSkiing-v0": ("neuralplay.runtime.skiing_env:NeuralSkiingEnv", 27_000),
    }
    for env_id, (entry, max_steps) in envs.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry, max_episode_steps=max_steps)


_register_envs()
