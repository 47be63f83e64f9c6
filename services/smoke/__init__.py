"""The first end-to-end path: a faust agent relays records from one topic to another.

It proves the stack (faust-streaming + aiokafka, kafka-python, the pinned broker) before the real
processors exist. ``herstelbus demo`` and tests/integration/test_smoke.py run it.
"""
