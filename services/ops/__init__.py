"""Ops tooling (issue 7): replay, reconcile, dead letters, re-routing. Thin adapters over
``herstelbus.core.ops``; each tool's click command is listed in ``herstelbus.ops.cli``."""
