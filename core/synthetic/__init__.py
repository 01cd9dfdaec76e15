"""Synthetic data, a tool beside the product: rendered stacking clips with ground truth,
rendered stills of sheets, synthetic defects and sessions, the sheet-detector dataset.

Runtime code never imports this package (training asks for a synthetic dataset, the one
exception). Modules: ``clips``, ``stills``, ``defects``, ``session``, ``sheetdata``.
"""
