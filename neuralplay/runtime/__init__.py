"""World models at play time, on onnxruntime + numpy (no torch): checkpoints checked on
load, reset(obs) / step(action), and the neural gymnasium envs."""
