"""Shared fixtures. Each fixture family lives in its own plugin module under tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.media",
    "tests.fixtures.services",
    "tests.fixtures.app",
    "tests.fixtures.faults",
    "tests.fixtures.leaks",
]
