"""The functional core: pure functions, no Kafka, HTTP or database imports.

Everything in this package is tested without a broker (see tests/unit/test_core_purity.py).
"""
