"""Streamlit entry point: ``streamlit run streamlit_app.py [-- --workspace PATH]``."""

from app.navigation import run

run()
