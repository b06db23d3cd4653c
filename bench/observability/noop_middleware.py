"""observed_recipe_api.py with no telemetry, plus one request and one response
middleware that do nothing: what Sanic's middleware machinery alone costs.

Run by `./nox -s bench -- telemetry_cost` as one of its setups (TELEMETRY=none), as
`PYTHONPATH=examples/observability python bench/observability/noop_middleware.py`.
"""

from __future__ import annotations

import observed_recipe_api as service


async def nothing_before(request: object) -> None:
    pass


async def nothing_after(request: object, response: object) -> None:
    pass


if __name__ == "__main__":
    service.app.on_request(nothing_before)
    service.app.on_response(nothing_after)
    service.main()
