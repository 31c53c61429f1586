"""`python -m bench SUBCOMMAND`: one subcommand per module of this package.

A subcommand module (bench/engine.py, bench/service.py, ...) exports `HELP: str`,
`add_arguments(parser)` and `main(args) -> int`; a module that does not exist yet is simply
not offered, so `service` can be added later without touching this file.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

#: Subcommands in the order `--help` lists them.
SUBCOMMANDS = ("engine", "service")


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.{name}":
            return None
        raise


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    modules: dict[str, ModuleType] = {}
    for name in SUBCOMMANDS:
        module = _load(name)
        if module is None:
            continue
        modules[name] = module
        sub_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub_parser)
    args = parser.parse_args(argv)
    if args.command is None:
        # `make bench` runs `python -m bench` bare: every benchmark in turn, with its defaults.
        codes = [int(module.main(parser.parse_args([name]))) for name, module in modules.items()]
        return max(codes, default=0)
    return int(modules[args.command].main(args))


if __name__ == "__main__":
    sys.exit(main())
