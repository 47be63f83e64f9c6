"""A real, pinned Apache Kafka broker for development and tests (``herstelbus kafka up|down|status|logs``).

Jars come from Maven Central through ``deploy/local/pom.xml``; the broker is one KRaft node
(broker + controller) on 127.0.0.1 with data under the herstelbus data dir.
"""

from herstelbus.devkafka.broker import BrokerInfo, LocalBroker
from herstelbus.devkafka.errors import DevKafkaError

__all__ = ["BrokerInfo", "DevKafkaError", "LocalBroker"]
