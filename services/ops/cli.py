"""The ops commands (issue 7), registered on the main ``herstelbus`` group. Each tool keeps its
click command in its own module; list it here with one import line."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
