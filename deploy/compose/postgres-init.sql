-- Run once by the postgres image when its data volume is new (docker-entrypoint-initdb.d): the
-- second database. `keystore` (POSTGRES_DB) holds the key store, `acks` the acks relay's state
-- (HERSTELBUS_ACKS_URL), which the dashboard and `herstelbus status` read. Both are owned by the
-- `herstelbus` user; the least-privilege roles of services/keystore/postgres-grants.sql are not
-- applied in this development stack.
CREATE DATABASE acks OWNER herstelbus;
