"""``herstelbus acks``: the acknowledgement relay (issue 6). The decisions are in
``herstelbus.core.acks``; this package holds the state store, the faust worker and the CLI."""
