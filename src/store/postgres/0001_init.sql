-- Version 1: every table the store needs.
--
-- `{schema}` is replaced by the configured schema, quoted, when the migration is applied; the
-- schema itself and the `oauth_edge_migrations` table are created before any migration runs.
-- Hashes and ids are bytea of a fixed length, times are bigint (seconds since the epoch, or
-- milliseconds where the column says `_ms`), everything else is text. Never edit this file
-- once released: add `0002_….sql` and list it in `MIGRATIONS` in `postgres.rs`.

CREATE TABLE {schema}.families (
    id          bytea PRIMARY KEY CHECK (octet_length(id) = 16),
    client_id   text NOT NULL,
    user_id     text,
    grant_type  text NOT NULL,
    created_at  bigint NOT NULL,
    revoked_at  bigint
);
CREATE INDEX families_client_id ON {schema}.families (client_id);
CREATE INDEX families_user_id ON {schema}.families (user_id);

CREATE TABLE {schema}.tokens (
    hash        bytea PRIMARY KEY CHECK (octet_length(hash) = 32),
    kind        text NOT NULL,
    family      bytea NOT NULL REFERENCES {schema}.families (id) ON DELETE CASCADE,
    scopes      text NOT NULL,
    issued_at   bigint NOT NULL,
    expires_at  bigint,
    consumed_at bigint
);
CREATE INDEX tokens_family ON {schema}.tokens (family);
CREATE INDEX tokens_expires_at ON {schema}.tokens (expires_at) WHERE expires_at IS NOT NULL;

-- Clients created at run time; `settings` is the `[[clients]]` table as JSON, secret hashed.
CREATE TABLE {schema}.clients (
    id          text PRIMARY KEY,
    settings    jsonb NOT NULL,
    created_at  bigint NOT NULL
);

CREATE TABLE {schema}.server_keys (
    id          integer PRIMARY KEY CHECK (id BETWEEN 0 AND 255),
    key         bytea NOT NULL CHECK (octet_length(key) = 32),
    created_at  bigint NOT NULL
);

-- What an authorization code is bound to; goes with its code.
CREATE TABLE {schema}.code_bindings (
    hash            bytea PRIMARY KEY REFERENCES {schema}.tokens (hash) ON DELETE CASCADE,
    redirect_uri    text,
    code_challenge  text
);

CREATE TABLE {schema}.device_grants (
    device_hash     bytea PRIMARY KEY CHECK (octet_length(device_hash) = 32),
    user_code       text NOT NULL UNIQUE,
    client_id       text NOT NULL,
    scopes          text NOT NULL,
    status          text NOT NULL
                    CHECK (status IN ('pending', 'approved', 'denied', 'redeemed')),
    user_id         text,
    first_interval  bigint NOT NULL CHECK (first_interval BETWEEN 0 AND 4294967295),
    poll_interval   bigint NOT NULL CHECK (poll_interval BETWEEN 0 AND 4294967295),
    last_poll_ms    bigint,
    created_at      bigint NOT NULL,
    expires_at      bigint NOT NULL
);
CREATE INDEX device_grants_expires_at ON {schema}.device_grants (expires_at);
