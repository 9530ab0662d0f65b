"""The real games: our Tetris engine (rules, a seeded game, a heuristic player, renderer)
and its gymnasium env."""
