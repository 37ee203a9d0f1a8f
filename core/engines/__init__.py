"""Engines: where a map is computed and a selection is picked.

``local`` (:mod:`core.engines.local`, in memory on one machine) and ``ray``
(:mod:`core.engines.ray`, Parquet shards on a Ray cluster) both implement
:class:`core.engines.base.Engine`; :func:`core.engines.registry.get_engine` returns one
by name.
"""
