"""The pygame front end: a game loop that knows only the Session interface, and the
Tetris session (keys, gravity, side-by-side compare)."""
