"""Torch modules of the world models (training side only): the Tetris GAN."""
