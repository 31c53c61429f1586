"""The `clipper` command: the composition root.

Each command group lives in its own module; the service commands import `api` and `workers`
inside their bodies so that `clipper cut` works with no Redis and no HTTP.
"""

from __future__ import annotations

import click

from clipper import __version__
from clipper.cli import engine_cmds, service_cmds, up_cmds


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="clipper")
def main() -> None:
    """Clipper: frame-exact video clips at close to stream-copy speed."""


for _module in (engine_cmds, service_cmds, up_cmds):
    for _command in _module.COMMANDS:
        main.add_command(_command)
