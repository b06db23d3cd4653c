"""recipe-api, packaged: the producer service of the site as an installable wheel.

The version is written here and nowhere else: hatchling reads it when it builds the
wheel (`[tool.hatch.version]` in pyproject.toml), and the service reports it on
`GET /health` and `recipe-api --version`.
"""

__version__ = "0.1.0"
