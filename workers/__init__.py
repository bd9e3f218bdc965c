"""Helpers off the event loop: the history writer thread, the PGN archive pool, analysis."""
