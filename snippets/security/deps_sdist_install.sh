# The same install, source distributions allowed: pip builds it, running its setup.py
pip install pydantic-setings
