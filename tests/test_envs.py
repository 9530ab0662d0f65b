import gymnasium as gym
import numpy as np

import neuralplay  # noqa: F401  (registers the envs)


def test_real_tetris_env_steps_and_renders():
    env = gym.make("neuralplay/Tetris-v0", render_mode="rgb_array")
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs) and info["next_piece"] in "IOJTSLZ"
    total = 0.0
    for _ in range(200):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        total += reward
        assert env.observation_space.contains(obs)
        if terminated:
            obs, info = env.reset()
    frame = env.render()
    assert frame.shape == (22 * 16, 10 * 16, 3) and frame.dtype == np.uint8
    env.close()


def test_same_seed_same_game():
    a, b = gym.make("neuralplay/Tetris-v0"), gym.make("neuralplay/Tetris-v0")
    oa, _ = a.reset(seed=7)
    ob, _ = b.reset(seed=7)
    for action in [1, 1, 3, 5, 0, 2, 5, 0]:
        oa = a.step(action)[0]
        ob = b.step(action)[0]
    assert np.array_equal(oa, ob)


def test_neural_env_has_the_real_envs_spaces_and_starts_from_a_given_board():
    real = gym.make("neuralplay/Tetris-v0")
    neural = gym.make("neuralplay/NeuralTetris-v0", render_mode="rgb_array")
    assert neural.observation_space == real.observation_space
    assert neural.action_space == real.action_space
    start, _ = real.reset(seed=1)
    obs, _ = neural.reset(seed=1, options={"board": start})
    assert np.array_equal(obs, start)
    for action in [1, 2, 3, 0, 5, 0]:
        obs, reward, terminated, truncated, info = neural.step(action)
        assert neural.observation_space.contains(obs)
    assert neural.render().shape == (22 * 16, 10 * 16, 3)
