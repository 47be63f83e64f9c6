"""The gemeente connector (issue 6): an SDK a gemeente's developers use directly, and the
``herstelbus gemeente consume`` CLI on top of it.

    from herstelbus.connectors.gemeente import GemeenteConsumer, Geopend, Geweigerd

    with GemeenteConsumer.from_env("GM0363", key_dir=Path("keys")) as consumer:
        for batch in consumer.batches():
            for event in batch.geopend: ...        # store durably (idempotent by event_id)
            for refused in batch.geweigerd: ...    # report: refused.code (a Weigercode)
            consumer.commit(batch)                 # only now

Modules: ``sdk`` (Kafka consumer), ``openen`` (one batch: verify, fetch keys, open), ``sleutelkluis``
(key store HTTP client), ``resultaat`` (typed results, refusal codes), ``volgorde`` (sequence order
and gaps, per dossier), ``sinks`` / ``jsonl`` / ``sqlsink`` / ``webhook`` (sinks), ``bevestiging``
(acks), ``verwerking`` (the CLI's loop).
Importing this package loads no Kafka client; ``GemeenteConsumer`` does when constructed.
"""

from .resultaat import ONLEESBAAR, Geopend, Geweigerd, Opened, Positie, Refused, RefusalCode, Resultaat, Weigercode
from .sdk import Batch, ConfigFout, GemeenteConsumer
from .sinks import Schrijfverslag, Sink, SinkFout, open_sink
from .sleutelkluis import Sleutelkluis, SleutelkluisFout
from .volgorde import Gat, Volgorde, orden, reekssleutel

__all__ = [
    "ONLEESBAAR", "Batch", "ConfigFout", "Gat", "GemeenteConsumer", "Geopend", "Geweigerd", "Opened", "Positie",
    "Refused", "RefusalCode", "Resultaat", "Schrijfverslag", "Sink", "SinkFout", "Sleutelkluis", "SleutelkluisFout",
    "Volgorde", "Weigercode", "open_sink", "orden", "reekssleutel",
]
