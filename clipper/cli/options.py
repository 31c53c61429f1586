"""Groups of command-line options handed to a command as one typed value.

A command with a dozen options would otherwise take a dozen parameters; `option_group`
adds the options and gives the command one object built from them instead (a `CutSpec`, a
request body, the API's address and key).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def option_group(
    target: str, build: Callable[[dict[str, Any]], T], *options: Decorator
) -> Callable[[F], F]:
    """Add `options` to a click command; pass it `target=build({option name: value})`.

    `options` are `click.option(...)` decorators, listed as they appear in `--help`.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def command(*args: Any, **params: Any) -> Any:
            values = {name: params.pop(name) for name in names}
            return func(*args, **{target: build(values)}, **params)

        before = len(getattr(command, "__click_params__", []))
        decorated: Callable[..., Any] = command
        for option in reversed(options):
            decorated = option(decorated)
        added = getattr(decorated, "__click_params__", [])[before:]
        names = [str(param.name) for param in added]
        return decorated  # type: ignore[return-value]

    return decorate

