"""Metal Sheet Monitor core: all product logic, importable with no Streamlit.

Modules, one per concept: counting, synth, sources, sessions, storage, capture, worker,
models, training, defects, segment, measure, calibration, reports, health, i18n, settings.
"""
__version__ = "0.1.0"
