"""The test kit: how tests (and benchmarks) start and stop everything.

- `kit.process`: the one process runner (`Process`), free ports, `wait_until`.
- `kit.snippets`: the one parser of shell lines (`VAR=value program args`).
- `kit.examples`: example programs started with their docstring's run line.
- `kit.fake_upstream`: a misbehaving producer for consumers to call.
- `kit.services.*`: one module per real service (Redis, PostgreSQL, HAProxy, ...),
  each giving fixtures; `kit.plugin` registers them all for pytest.
- `kit.sysdeps`: the system programs they need, installed with apt when missing.

Nothing in examples/ imports the kit: examples stay single files a reader copies.
"""
