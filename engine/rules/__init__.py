"""The rules core: clocks, game state and commands, move parsing, PGN and the wire shapes.

Pure: values in (``now_ms`` included), new state and events out; python-chess is the rules.
"""
