"""The UCI protocol's pure part: commands parsed, options, time planned and output formatted.

No I/O and no clock here: `engine/__main__.py` reads standard input, keeps the clock and runs
the search (`engine.search`) in a thread; this package turns lines into values and values into
lines.
"""
