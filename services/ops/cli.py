"""The ops commands (issue 7), registered on the main ``herstelbus`` group. Each tool keeps its
click command in its own module; list it here with one import line."""

from __future__ import annotations

import click

from herstelbus.dashboard.cli import dashboard
from herstelbus.ops.deadletter import deadletter
from herstelbus.ops.reconcile import command as reconcile
from herstelbus.ops.replay import replay
from herstelbus.ops.reroute import reroute

COMMANDS: list[click.Command] = []
COMMANDS.append(dashboard)
COMMANDS.append(reconcile)
COMMANDS.append(replay)
COMMANDS.append(deadletter)
COMMANDS.append(reroute)
