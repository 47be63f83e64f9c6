-- herstelbus key store on PostgreSQL: least privilege per process (README.md, "PostgreSQL").
-- Run as the owner of the tables (the role that ran the first `herstelbus keys serve` or any
-- key-store command against the database), after creating the two login roles:
--   CREATE ROLE herstelbus_router LOGIN PASSWORD '...';
--   CREATE ROLE herstelbus_api LOGIN PASSWORD '...';
-- Ops commands (erase, register, token) run as the owner.

-- The router (exchange) writes wrapped keys and compares them by digest: it can never read one.
GRANT SELECT (gemeentecode, subject, event_id, key_id, wrapped_sha256), INSERT ON wrapped_keys TO herstelbus_router;
GRANT SELECT, INSERT ON key_epochs TO herstelbus_router;
GRANT SELECT (subject) ON erased_subjects TO herstelbus_router;
GRANT SELECT ON gemeente_keys TO herstelbus_router;

-- The gemeente API reads keys and announcements and appends to the release log; it writes no key.
-- Forget notices: it serves a gemeente's pending ones and records its confirmation (sent_at only),
-- with one appended audit record per confirmed notice; it can neither add nor delete a notice.
GRANT SELECT ON wrapped_keys, key_epochs, erased_subjects TO herstelbus_api;
GRANT SELECT (token_sha256, gemeentecode, revoked_at) ON api_tokens TO herstelbus_api;
GRANT INSERT ON release_log TO herstelbus_api;
GRANT USAGE ON SEQUENCE release_log_id_seq TO herstelbus_api;
GRANT SELECT, UPDATE (sent_at) ON forget_notices TO herstelbus_api;
GRANT INSERT ON audit_log TO herstelbus_api;
