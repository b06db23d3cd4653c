"""observed_recipe_api.py with no telemetry, plus ONE part of what a sampled-out trace
does per request: where the cost of a trace that is not kept goes.

`TRACE_PART` picks the part, each one including the one before it:

- `extract`: read the caller's context from the headers (W3C and B3 propagators);
- `span`: that, then start and end a server span through the sampler, which (with
  `TRACE_SAMPLE=0`) makes a new trace id and answers "drop": a non-recording span.

The example itself with `TELEMETRY=traces TRACE_SAMPLE=0` adds the rest: the span
made current for the request (context attach and detach) and the route lookups.
Run by `./nox -s bench -- telemetry_cost` as one of its setups, as
`PYTHONPATH=examples/observability python bench/observability/trace_parts.py`.
"""

from __future__ import annotations

import os

import observed_recipe_api as service
import tracing
from opentelemetry.trace import SpanKind


def main() -> None:
    part = os.environ["TRACE_PART"]
    provider = tracing.make_provider(service.SERVICE, service.settings)
    tracer = provider.get_tracer("distributed-python")

    def before(request: service.Request) -> None:
        parent = tracing.PROPAGATOR.extract(request.headers)
        if part == "span":
            request.ctx.span = tracer.start_span(
                "GET /recipes/<recipe_id:int>", context=parent, kind=SpanKind.SERVER
            )

    def after(request: service.Request, response: service.HTTPResponse) -> None:
        if part == "span":
            request.ctx.span.end()

    service.REQUEST_HOOKS.append(before)
    service.RESPONSE_HOOKS.append(after)
    service.main()


if __name__ == "__main__":
    main()
