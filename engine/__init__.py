"""The pure chess core: rules, clocks, game state, PGN, evaluation and search; no I/O."""
