"""Every fixture comes from the test kit (tests/kit): real services, examples, fakes."""

pytest_plugins = ["kit.plugin"]
