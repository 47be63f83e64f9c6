"""A real, pinned Apache Kafka broker for development and tests (``herstelbus kafka up|down|status|logs``).

Jars come from Maven Central through ``deploy/local/pom.xml``; the broker is one KRaft node
(broker + controller) on 127.0.0.1 with data under the herstelbus data dir: a plaintext listener
(dev only: its anonymous principal is a super user) and a SASL_SSL one (SCRAM-SHA-512, a dev CA
made by ``herstelbus.devkafka.tls``), default deny.
"""

from herstelbus.devkafka.broker import BrokerInfo, LocalBroker
from herstelbus.devkafka.errors import DevKafkaError

__all__ = ["BrokerInfo", "DevKafkaError", "LocalBroker"]
