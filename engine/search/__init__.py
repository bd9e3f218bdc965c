"""The search engine: evaluation and search, used only by the analysis workers."""
