"""The router: faust stream processors that turn UHT events into sealed, routed gemeente events.

Thin adapters over the pure core (``herstelbus.core.routing``, ``contracts``, ``privacy``):
``sealer`` keeps the per-gemeente key epochs over the key store, ``pipeline`` turns one input
record into outputs and a receipt, ``app`` wires that to faust topics and tables.
"""
