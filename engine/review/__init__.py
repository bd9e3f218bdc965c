"""Game review: winning chances, move and game accuracy, judgments, the review of a game.

Pure (no I/O, no clock): evaluations of every position in, a review out. The formulas and
thresholds are lichess's (lila's ``WinPercent``, ``AccuracyPercent``, ``Advice`` and
``Accuracy``), restated here; :mod:`engine.review.review` puts them together.
"""
