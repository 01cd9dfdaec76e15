"""Benchmarks, the soak run and the peer counter: tools beside the product that print
figures (``python -m core bench ...``). Never imported by runtime code.

Modules: ``count``, ``models``, ``defects``, ``measure``, ``export``, ``rss``, ``soak``, ``peer``.
"""
