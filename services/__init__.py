"""herstelbus: the event exchange between UHT and the gemeenten in the hersteloperatie."""

__version__ = "0.1.0"
