"""Sieve core: every stage of the pipeline, free of any UI code.

Heavy libraries (torch, sentence-transformers, umap, hdbscan) are imported inside
the functions that need them, so importing ``core`` stays fast.
"""

__version__ = "0.1.0"
