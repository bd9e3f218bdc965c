"""The tournament core: players, rounds, pairings (Berger, TRF for Swiss engines), standings."""
