"""Commands of this group (filled in by the module's owner)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
