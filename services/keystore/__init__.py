"""The key store ("sleutelkluis", issue 4): wrapped per-event data keys, key-epoch announcements,
the gemeente key directory, erasure tombstones, the release and audit logs. SQLite by default,
PostgreSQL by URL (README.md beside this file).

Import the repository from ``herstelbus.keystore.store`` (``KeyStore`` and its views
``ExchangeWriter``, ``GemeenteAccess``, ``KeyAdmin``) and the HTTP app from
``herstelbus.keystore.api``; this package's ``__init__`` stays light so the CLI starts fast.
"""
