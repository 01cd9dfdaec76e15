"""Metal Sheet Monitor core: all product logic, importable with no Streamlit.

Packages by concern: ``counting`` (the pure engine), ``live`` (sources, worker, sessions),
``models`` (runner, registry, manager, training), ``qa`` (defects, segmentation,
measurement, calibration), ``reports``, ``platform`` (storage, settings, paths, i18n, ...);
tools beside the product: ``synthetic`` (renderers) and ``bench`` (benchmarks).
"""
__version__ = "0.2.0"
