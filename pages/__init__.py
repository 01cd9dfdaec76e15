"""Streamlit pages: thin views over core/. Shared UI helpers are in pages.common."""
