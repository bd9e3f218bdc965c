"""The pure chess core: `rules` (games), `tournament` (pairing, standings), `search` (analysis).

No I/O, no clock reads. `app` uses `rules` and `tournament`; only the analysis workers use
`search`.
"""
