"""Neural Skiing as a gymnasium env: `neuralplay/NeuralSkiing-v0`, with the spaces of
`ALE/Skiing-v5` (210x160x3 uint8 frames, Discrete(3)). Every frame after reset comes from
the world model, upscaled from its 105x80 palette frames."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from neuralplay.games.skiing import ACTIONS, NATIVE, downsample, to_palette, to_rgb, upsample
from neuralplay.runtime.skiing import NeuralSkiing, Sampling, load_starts




class NeuralSkiingEnv(gym.Env):
    """reset() starts from one of the shipped start states (picked with the seed), or from
    real frames: `options={"frames": (T, 210, 160, 3) uint8, "actions": (T - 1,)}`.
    The reward is ALE's time penalty per step; the neural game never ends by itself."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, render_mode: str | None = None, checkpoint: str | None = None,
                 tokenizer: str | None = None, threads: int = 1, maskgit_steps: int | None = None):
        self.observation_space = spaces.Box(0, 255, (*NATIVE, 3), np.uint8)
        self.action_space = spaces.Discrete(len(ACTIONS))
        self.render_mode = render_mode
        sampling = Sampling(steps=maskgit_steps) if maskgit_steps else None
        self.model = NeuralSkiing(checkpoint, tokenizer, threads=threads, sampling=sampling)
        self.starts = load_starts(checkpoint)
        self.obs = np.zeros((*NATIVE, 3), np.uint8)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        if options.get("frames") is not None:
            frames = downsample(np.stack([to_palette(f) for f in np.asarray(options["frames"], np.uint8)]))
            actions = options.get("actions")
        else:
            start = self.starts[int(self.np_random.integers(len(self.starts)))]
            frames, actions = start.frames, start.actions_into_frames()
        self.obs = to_rgb(upsample(self.model.reset(frames, actions)))
        return self.obs.copy(), {}

    def step(self, action):
        self.obs = to_rgb(upsample(self.model.step(int(action))))
        return self.obs.copy(), self.model.reward_per_step, False, False, {}

    def render(self):
        return self.obs.copy() if self.render_mode == "rgb_array" else None
