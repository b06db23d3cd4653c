"""setup.py of a look-alike package, as an attacker publishes it (sdist only).

pip runs this file to build the package, on the machine that installs it, before
anything is imported. This one only leaves a marker file where INSTALL_MARKER says
(nothing without it); a real one reads ~/.ssh, cloud credentials and CI tokens and
posts them away.
"""

import os
from pathlib import Path

from setuptools import setup

# --8<-- [start:payload]
marker = os.environ.get("INSTALL_MARKER")
if marker:  # the attacker's code, run by `pip install` itself
    Path(marker).write_text(f"ran at install time as uid {os.getuid()}\n")
# --8<-- [end:payload]

setup(name="pydantic-setings", version="2.99.0", py_modules=[])
