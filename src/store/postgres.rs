//! The PostgreSQL store: see [`PostgresStore`].

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{AsyncMessage, NoTls, Row};

use super::rules::{check_code, poll_step, rotation_step, RotationStep};
use super::{
    ClientRecord, CodeBinding, DeviceGrant, DevicePoll, DeviceStatus, DeviceTokens, NewDeviceGrant,
    NewFamily, NewToken, Notice, Rotation, Store, StoreError, TokenRecord, UnixTime,
};
use crate::config::PostgresConfig;
use crate::scope::Scopes;
use crate::tokens::{FamilyId, ServerKey, TokenHash, TokenKind};

/// The migrations, in order: entry `i` takes the schema to version `i + 1`. `{schema}` stands
/// for the quoted schema. Add new files at the end; never edit a released one.
const MIGRATIONS: &[&str] = &[include_str!("postgres/0001_init.sql")];

/// The notification channel for the `public` schema; other schemas append `_<schema>`.
const CHANNEL: &str = "oauth_edge_revocations";

/// The longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`).
const MAX_IDENT: usize = 63;

/// How many notices a receiver may fall behind before it sees `Lagged`.
const NOTICE_CAPACITY: usize = 1024;

/// The listener's reconnection delay: doubled after each failure, up to the maximum.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How often the listener checks that its connection still answers.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// The longest a migration's statements (the advisory lock wait included) may run.
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// A [`Store`] in a PostgreSQL database, shared by every instance configured with the same
/// database and schema (cargo feature `postgres`).
///
/// # Connections
///
/// [`tokio-postgres`](tokio_postgres) with a [`deadpool-postgres`](deadpool_postgres) pool of at
/// most `pool_size` connections. A request waits at most `timeout` for a pooled connection,
/// a new connection at most `connect_timeout` to open, and every statement runs under
/// `statement_timeout = timeout` (set as a startup option, so it holds for every statement on
/// every connection); one whole store call gives up after `connect_timeout + 3 × timeout`. A
/// call that fails for any of these reasons, or because the server is gone, shutting down or
/// out of connections, is [`StoreError::Unavailable`]. Connections are plain TCP or Unix
/// sockets (`NoTls`): run the database on a trusted network, or put a TLS tunnel in front.
/// The URL, which may hold a password, never appears in an error or a log line. Unless the URL
/// names one, every connection's `application_name` is `oauth-edge/<schema>`.
///
/// # Schema and migrations
///
/// Every table lives in the configured schema (default `public`), created when missing. The
/// schema's `oauth_edge_migrations (version, applied_at)` table records the migrations
/// applied; each is one SQL file in `src/store/postgres/` (`0001_init.sql`, …). They are
/// applied in one transaction under a transaction-level advisory lock keyed by the schema, so
/// instances that start together migrate once, one after the other.
/// [`PostgresStore::connect`] migrates, and so does [`PostgresStore::migrate`] (`oauth-edge
/// migrate`) for deployments that migrate before rolling out.
///
/// # Atomic steps
///
/// A decision that two instances could race on is one transaction that first locks the row
/// deciding it, or one conditional statement:
///
/// - `rotate` locks the token's family row (`SELECT … FOR UPDATE`), then reads the token and
///   its family afresh. Every change of a token's consumption or of its family's revocation
///   happens under that row lock, so rotations (and replays, and revocations) of a family are
///   serialised: exactly one rotation wins, the next one is the replay that revokes, the rest
///   find the family revoked.
/// - `poll_device_grant` locks the grant row, decides with the same `poll_step` as every
///   other backend, and writes the new family and tokens in the same transaction.
/// - `decide_device_grant` is one `UPDATE … WHERE status = 'pending'`.
/// - `issue`, `issue_code` and `revoke_*` are single statements (data-modifying `WITH`
///   clauses); `put_device_grant`, `delete_client` and `purge_expired` are one transaction.
///
/// A hash that is already stored (`unique_violation`, 23505) is [`StoreError::Conflict`], and
/// the statement or transaction that hit it writes nothing.
///
/// # Revocation notices
///
/// Every revocation (`revoke_family`, `revoke_all`, `delete_client`, a replayed `rotate`) sends
/// one `pg_notify` per family newly revoked, in the transaction that revokes it, so it is
/// delivered exactly when the revocation commits. The channel is `oauth_edge_revocations` for
/// the `public` schema and `oauth_edge_revocations_<schema>` for any other (so that stores in
/// different schemas of one database do not hear each other; a channel name that would be
/// longer than PostgreSQL's 63 bytes uses the first 32 hex digits of the schema's BLAKE3 hash
/// instead of the schema). The payload is `"<family hex> <revoking instance's clock, ms since
/// the epoch>"`. Creating, changing or deleting a run-time client sends `"client <id>"` on the
/// same channel, in the statement that makes the change ([`Notice::Client`]).
///
/// Each store keeps one connection outside the pool that `LISTEN`s on the channel, on a thread
/// of its own (so it does not depend on the runtime that opened the store staying alive). It
/// re-issues the `LISTEN` every 10 s as a heartbeat. When the connection fails it reconnects
/// after 100 ms, doubling up to 5 s, and once listening again sends [`Notice::Gap`]: what was
/// revoked meanwhile was not heard. The thread ends when the store is dropped. [`Store::notices`]
/// hands out receivers of a broadcast channel of 1024 notices; a receiver that falls further
/// behind gets `Lagged`, which it must treat as a gap.
pub struct PostgresStore {
    pool: Pool,
    sql: Sql,
    schema: String,
    channel: String,
    /// Bounds a whole store call.
    deadline: Duration,
    notices: broadcast::Sender<Notice>,
    /// Dropping it stops the listener.
    _stop: oneshot::Sender<()>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("channel", &self.channel)
            .field("pool_size", &status.max_size)
            .field("pool_open", &status.size)
            .finish_non_exhaustive()
    }
}

/// The settings `connect` and `migrate` share, checked.
struct Target {
    pg: tokio_postgres::Config,
    schema: String,
    /// The schema as an SQL identifier, quoted.
    quoted: String,
    channel: String,
    pool_size: usize,
    connect_timeout: Duration,
    timeout: Duration,
}

impl Target {
    fn new(c: &PostgresConfig) -> Result<Target, StoreError> {
        check_schema(&c.schema)?;
        if c.pool_size == 0 {
            return Err(StoreError::Backend(
                "postgres: store.pool_size must be at least 1".into(),
            ));
        }
        // The parser's messages may quote pieces of the string, password included: say only
        // that it is wrong.
        let mut pg: tokio_postgres::Config = c.url.expose().parse().map_err(|_| {
            StoreError::Backend(
                "postgres: store.url is not a valid PostgreSQL connection string or URL".into(),
            )
        })?;
        pg.connect_timeout(c.connect_timeout);
        let statement_timeout = format!(
            "-c statement_timeout={}",
            c.timeout.as_millis().clamp(1, i32::MAX as u128)
        );
        let options = match pg.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} {statement_timeout}"),
            _ => statement_timeout,
        };
        pg.options(options);
        if pg.get_application_name().is_none() {
            pg.application_name(format!("oauth-edge/{}", c.schema));
        }
        Ok(Target {
            pg,
            schema: c.schema.clone(),
            quoted: quote_ident(&c.schema),
            channel: channel_for(&c.schema),
            pool_size: c.pool_size as usize,
            connect_timeout: c.connect_timeout,
            timeout: c.timeout,
        })
    }
}

/// Refuses a schema name that is not a plain identifier: ASCII letters, digits and `_`, not
/// starting with a digit, at most 63 bytes. (It is always quoted, so its case is kept.)
fn check_schema(schema: &str) -> Result<(), StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= MAX_IDENT
        && schema
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(StoreError::Backend(format!(
            "postgres: store.schema {schema:?} must be 1 to 63 ASCII letters, digits or \
             underscores, not starting with a digit"
        )))
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The notification channel of a schema; see [`PostgresStore`].
fn channel_for(schema: &str) -> String {
    if schema == "public" {
        return CHANNEL.into();
    }
    let named = format!("{CHANNEL}_{schema}");
    if named.len() <= MAX_IDENT {
        named
    } else {
        let hash = blake3::hash(schema.as_bytes()).to_hex();
        format!("{CHANNEL}_{}", &hash[..32])
    }
}

/// The advisory lock migrations of `schema` take.
fn migration_lock(schema: &str) -> i64 {
    let h = blake3::hash(format!("oauth-edge migrations\0{schema}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    i64::from_le_bytes(b)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Errors

/// SQLSTATEs that mean "try again later", not "this request is wrong".
fn is_transient(code: &str) -> bool {
    // 08: connection exception. 28: invalid authorization (cannot log in). 53: insufficient
    // resources (too many connections, out of memory, disk full). 57: operator intervention
    // (57014 query_canceled by statement_timeout, 57P01 admin_shutdown, 57P03
    // cannot_connect_now). 58: system error (I/O). 40001/40P01: serialization failure and
    // deadlock. 55P03: lock_not_available. 25P03: idle_in_transaction_session_timeout.
    ["08", "28", "53", "57", "58"]
        .iter()
        .any(|class| code.starts_with(class))
        || matches!(code, "40001" | "40P01" | "55P03" | "25P03")
}

/// Maps a driver error. A server error is reported by its SQLSTATE and primary message only:
/// its detail can quote the values of a row.
fn pg_error(context: &str, e: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        if *db.code() == SqlState::UNIQUE_VIOLATION {
            return StoreError::Conflict;
        }
        let code = db.code().code();
        let msg = format!(
            "postgres {context}: {} {code}: {}",
            db.severity(),
            db.message()
        );
        return if is_transient(code) {
            StoreError::Unavailable(msg)
        } else {
            StoreError::Backend(msg)
        };
    }
    let mut msg = format!("postgres {context}: {e}");
    let mut io = false;
    if let Some(source) = std::error::Error::source(e) {
        io = source.is::<std::io::Error>();
        msg.push_str(": ");
        msg.push_str(&source.to_string());
    }
    // The driver's error kinds are private; these are the ones about the connection.
    let transport = e.is_closed()
        || io
        || [
            "error connecting to server",
            "timeout waiting for server",
            "error communicating with the server",
            "unexpected message from server",
            "error parsing response from server",
            "error performing TLS handshake",
            "authentication error",
        ]
        .iter()
        .any(|k| e.to_string().starts_with(k));
    if transport {
        StoreError::Unavailable(msg)
    } else {
        StoreError::Backend(msg)
    }
}

/// A pooled connection that could not be had: the database is unavailable, whatever the cause.
fn pool_error(context: &str, e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => match pg_error(context, &e) {
            StoreError::Backend(m) | StoreError::Unavailable(m) => StoreError::Unavailable(m),
            StoreError::Conflict | StoreError::Busy => {
                StoreError::Unavailable(format!("postgres {context}: {e}"))
            }
        },
        PoolError::Timeout(t) => {
            StoreError::Unavailable(format!("postgres {context}: no connection in time ({t:?})"))
        }
        other => StoreError::Unavailable(format!("postgres {context}: {other}")),
    }
}

trait Ctx<T> {
    fn ctx(self, context: &str) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for Result<T, tokio_postgres::Error> {
    fn ctx(self, context: &str) -> Result<T, StoreError> {
        self.map_err(|e| pg_error(context, &e))
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("postgres: corrupted row: {what}"))
}

fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize, what: &str) -> Result<T, StoreError> {
    row.try_get(i).map_err(|_| corrupt(what))
}

fn fixed<const N: usize>(v: Vec<u8>, what: &str) -> Result<[u8; N], StoreError> {
    v.try_into().map_err(|_| corrupt(what))
}

/// The text a scope set is stored as; refuses a set that would not read back as itself.
fn scopes_text(scopes: &Scopes) -> Result<String, StoreError> {
    let text = scopes.to_string();
    match Scopes::parse(&text) {
        Ok(back) if back == *scopes => Ok(text),
        _ => Err(StoreError::Backend(
            "postgres: scope set cannot be stored as a space-delimited string".into(),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Statements

/// Every statement, with the schema filled in. `$n` parameters are documented where used.
struct Sql {
    find: String,
    insert_tokens: String,
    insert_family_tokens: String,
    lock_family_of: String,
    consume: String,
    revoke_one: String,
    revoke_by_client: String,
    revoke_by_user: String,
    revoke_by_both: String,
    purge_tokens: String,
    purge_families: String,
    purge_devices: String,
    keys: String,
    insert_key: String,
    client: String,
    create_client: String,
    replace_client: String,
    list_clients: String,
    delete_client: String,
    issue_code: String,
    code_binding: String,
    drop_stale_device: String,
    insert_device: String,
    device_by_code: String,
    decide: String,
    lock_device: String,
    update_device: String,
}

const SELECT_RECORD: &str = "
    SELECT t.hash, t.kind, t.family, f.client_id, f.user_id, f.grant_type, t.scopes,
           t.issued_at, t.expires_at, t.consumed_at, f.revoked_at IS NOT NULL
    FROM {s}.tokens t JOIN {s}.families f ON f.id = t.family
    WHERE t.hash = $1";

const SELECT_DEVICE: &str = "
    SELECT device_hash, user_code, client_id, scopes, status, user_id, first_interval,
           poll_interval, last_poll_ms, created_at, expires_at
    FROM {s}.device_grants";

/// `$1..$6`: the tokens' columns as arrays.
const TOKENS_FROM_ARRAYS: &str = "
    INSERT INTO {s}.tokens (hash, kind, family, scopes, issued_at, expires_at)
    SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::text[], $5::bigint[],
                         $6::bigint[])";

/// Revokes the families the `{filter}` picks (locked in id order, so that two revocations of
/// overlapping sets cannot deadlock) and notifies each. `$1` now, `$2` channel, `$3` time in
/// ms, filter parameters from `$4`.
const REVOKE_MANY: &str = "
    WITH r AS (
        UPDATE {s}.families SET revoked_at = $1
        WHERE id IN (SELECT id FROM {s}.families
                     WHERE revoked_at IS NULL AND {filter}
                     ORDER BY id FOR UPDATE)
          AND revoked_at IS NULL
        RETURNING id
    )
    SELECT r.id, pg_notify($2, encode(r.id, 'hex') || ' ' || $3::bigint)::text FROM r";

impl Sql {
    fn new(quoted: &str) -> Sql {
        let q = |s: &str| s.replace("{s}", quoted);
        let revoke = |filter: &str| q(&REVOKE_MANY.replace("{filter}", filter));
        Sql {
            find: q(SELECT_RECORD),
            insert_tokens: q(TOKENS_FROM_ARRAYS),
            // `$7..$11`: the family.
            insert_family_tokens: q(&format!(
                "WITH f AS (
                    INSERT INTO {{s}}.families (id, client_id, user_id, grant_type, created_at)
                    VALUES ($7, $8, $9, $10, $11)
                 ) {TOKENS_FROM_ARRAYS}"
            )),
            lock_family_of: q("
                SELECT id FROM {s}.families
                WHERE id = (SELECT family FROM {s}.tokens WHERE hash = $1)
                FOR UPDATE"),
            // `$7` now, `$8` the consumed token.
            consume: q(&format!(
                "WITH c AS (UPDATE {{s}}.tokens SET consumed_at = $7 WHERE hash = $8)
                 {TOKENS_FROM_ARRAYS}"
            )),
            // `$1` now, `$2` family, `$3` channel, `$4` time in ms.
            revoke_one: q("
                WITH r AS (
                    UPDATE {s}.families SET revoked_at = $1
                    WHERE id = $2 AND revoked_at IS NULL
                    RETURNING id
                )
                SELECT r.id, pg_notify($3, encode(r.id, 'hex') || ' ' || $4::bigint)::text
                FROM r"),
            revoke_by_client: revoke("client_id = $4"),
            revoke_by_user: revoke("user_id = $4"),
            revoke_by_both: revoke("client_id = $4 AND user_id = $5"),
            // `$1` before, `$2` limit. Skips rows a concurrent transaction holds.
            purge_tokens: q("
                WITH dead AS (
                    DELETE FROM {s}.tokens WHERE hash IN (
                        SELECT hash FROM {s}.tokens WHERE expires_at < $1
                        LIMIT $2 FOR UPDATE SKIP LOCKED)
                    RETURNING family
                )
                SELECT family, count(*) FROM dead GROUP BY family"),
            // `$1` the families whose tokens were just purged.
            purge_families: q("
                DELETE FROM {s}.families WHERE id IN (
                    SELECT f.id FROM {s}.families f
                    WHERE f.id = ANY($1)
                      AND NOT EXISTS (SELECT 1 FROM {s}.tokens t WHERE t.family = f.id)
                    FOR UPDATE SKIP LOCKED)"),
            purge_devices: q("
                DELETE FROM {s}.device_grants WHERE device_hash IN (
                    SELECT device_hash FROM {s}.device_grants WHERE expires_at < $1
                    LIMIT $2 FOR UPDATE SKIP LOCKED)"),
            keys: q("SELECT id, key FROM {s}.server_keys ORDER BY id"),
            insert_key: q("
                INSERT INTO {s}.server_keys (id, key, created_at) VALUES ($1, $2, $3)
                ON CONFLICT (id) DO NOTHING"),
            client: q("SELECT id, settings::text, created_at FROM {s}.clients WHERE id = $1"),
            // Each client change notifies the channel (`$4`) in its own statement, so the
            // notice is delivered exactly when the change commits.
            create_client: q("
                WITH c AS (
                    INSERT INTO {s}.clients (id, settings, created_at)
                    VALUES ($1, $2::text::jsonb, $3)
                    ON CONFLICT (id) DO NOTHING
                    RETURNING id
                )
                SELECT pg_notify($4, 'client ' || id) FROM c"),
            replace_client: q("
                WITH c AS (
                    UPDATE {s}.clients SET settings = $2::text::jsonb
                    WHERE id = $1 AND settings = $3::text::jsonb
                    RETURNING id
                )
                SELECT pg_notify($4, 'client ' || id) FROM c"),
            list_clients: q(
                "SELECT id, settings::text, created_at FROM {s}.clients ORDER BY id COLLATE \"C\"",
            ),
            delete_client: q("
                WITH c AS (DELETE FROM {s}.clients WHERE id = $1 RETURNING id)
                SELECT pg_notify($2, 'client ' || id) FROM c"),
            issue_code: q("
                WITH f AS (
                    INSERT INTO {s}.families (id, client_id, user_id, grant_type, created_at)
                    VALUES ($1, $2, $3, $4, $5)
                ), t AS (
                    INSERT INTO {s}.tokens (hash, kind, family, scopes, issued_at, expires_at)
                    VALUES ($6, $7, $1, $8, $9, $10)
                )
                INSERT INTO {s}.code_bindings (hash, redirect_uri, code_challenge)
                VALUES ($6, $11, $12)"),
            code_binding: q(
                "SELECT redirect_uri, code_challenge FROM {s}.code_bindings WHERE hash = $1",
            ),
            drop_stale_device: q("
                DELETE FROM {s}.device_grants
                WHERE user_code = $1 AND expires_at <= $2 AND device_hash <> $3"),
            insert_device: q("
                INSERT INTO {s}.device_grants (device_hash, user_code, client_id, scopes, status,
                    first_interval, poll_interval, created_at, expires_at)
                VALUES ($1, $2, $3, $4, 'pending', $5, $5, $6, $7)"),
            device_by_code: q(&format!(
                "{SELECT_DEVICE} WHERE user_code = $1 AND expires_at > $2"
            )),
            decide: q("
                UPDATE {s}.device_grants SET status = $1, user_id = $2
                WHERE user_code = $3 AND status = 'pending' AND expires_at > $4"),
            lock_device: q(&format!(
                "{SELECT_DEVICE} WHERE device_hash = $1 FOR UPDATE"
            )),
            update_device: q("
                UPDATE {s}.device_grants SET status = $1, poll_interval = $2, last_poll_ms = $3
                WHERE device_hash = $4"),
        }
    }
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

async fn query(
    c: &impl GenericClient,
    context: &str,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<Row>, StoreError> {
    let st = c.prepare_cached(sql).await.ctx(context)?;
    c.query(&st, params).await.ctx(context)
}

async fn query_opt(
    c: &impl GenericClient,
    context: &str,
    sql: &str,
    params: &Params<'_>,
) -> Result<Option<Row>, StoreError> {
    let st = c.prepare_cached(sql).await.ctx(context)?;
    c.query_opt(&st, params).await.ctx(context)
}

async fn execute(
    c: &impl GenericClient,
    context: &str,
    sql: &str,
    params: &Params<'_>,
) -> Result<u64, StoreError> {
    let st = c.prepare_cached(sql).await.ctx(context)?;
    c.execute(&st, params).await.ctx(context)
}

fn record(row: &Row) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        hash: TokenHash(fixed(col(row, 0, "token hash")?, "token hash")?),
        kind: TokenKind::parse(col(row, 1, "token kind")?).ok_or_else(|| corrupt("token kind"))?,
        family: FamilyId(fixed(col(row, 2, "family id")?, "family id")?),
        client_id: col(row, 3, "client id")?,
        user: col(row, 4, "user")?,
        grant_type: col(row, 5, "grant type")?,
        scopes: Scopes::parse(col(row, 6, "scopes")?).map_err(|_| corrupt("scopes"))?,
        issued_at: col(row, 7, "issued_at")?,
        expires_at: col(row, 8, "expires_at")?,
        consumed_at: col(row, 9, "consumed_at")?,
        revoked: col(row, 10, "revoked")?,
    })
}

fn device_grant(row: &Row) -> Result<DeviceGrant, StoreError> {
    let interval = |i: usize| -> Result<u32, StoreError> {
        u32::try_from(col::<i64>(row, i, "device grant interval")?)
            .map_err(|_| corrupt("device grant interval"))
    };
    Ok(DeviceGrant {
        grant: NewDeviceGrant {
            device_hash: TokenHash(fixed(col(row, 0, "device hash")?, "device hash")?),
            user_code: col(row, 1, "user code")?,
            client_id: col(row, 2, "client id")?,
            scopes: Scopes::parse(col(row, 3, "scopes")?).map_err(|_| corrupt("scopes"))?,
            interval: interval(6)?,
            created_at: col(row, 9, "created_at")?,
            expires_at: col(row, 10, "expires_at")?,
        },
        status: DeviceStatus::parse(col(row, 4, "device grant status")?)
            .ok_or_else(|| corrupt("device grant status"))?,
        user: col(row, 5, "user")?,
        interval: interval(7)?,
        last_poll_ms: col(row, 8, "last_poll_ms")?,
    })
}

fn client_record(row: &Row) -> Result<ClientRecord, StoreError> {
    let settings: String = col(row, 1, "client settings")?;
    Ok(ClientRecord {
        id: col(row, 0, "client id")?,
        settings: serde_json::from_str(&settings).map_err(|_| corrupt("client settings"))?,
        created_at: col(row, 2, "created_at")?,
    })
}

fn family_ids(rows: &[Row]) -> Result<Vec<FamilyId>, StoreError> {
    let mut out = rows
        .iter()
        .map(|r| Ok(FamilyId(fixed(col(r, 0, "family id")?, "family id")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    out.sort();
    Ok(out)
}

/// The tokens' columns as the arrays [`TOKENS_FROM_ARRAYS`] takes.
struct TokenArrays<'a> {
    hashes: Vec<&'a [u8]>,
    kinds: Vec<&'static str>,
    families: Vec<&'a [u8]>,
    scopes: Vec<String>,
    issued: Vec<i64>,
    expires: Vec<Option<i64>>,
}

impl<'a> TokenArrays<'a> {
    fn new(tokens: &'a [NewToken]) -> Result<Self, StoreError> {
        Ok(TokenArrays {
            hashes: tokens.iter().map(|t| &t.hash.0[..]).collect(),
            kinds: tokens.iter().map(|t| t.kind.as_str()).collect(),
            families: tokens.iter().map(|t| &t.family.0[..]).collect(),
            scopes: tokens
                .iter()
                .map(|t| scopes_text(&t.scopes))
                .collect::<Result<_, _>>()?,
            issued: tokens.iter().map(|t| t.issued_at).collect(),
            expires: tokens.iter().map(|t| t.expires_at).collect(),
        })
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 6] {
        [
            &self.hashes,
            &self.kinds,
            &self.families,
            &self.scopes,
            &self.issued,
            &self.expires,
        ]
    }
}

/// Writes `family` (when given) and `tokens` as one statement.
async fn insert_issue(
    c: &impl GenericClient,
    sql: &Sql,
    context: &str,
    family: Option<&NewFamily>,
    tokens: &[NewToken],
) -> Result<(), StoreError> {
    let arrays = TokenArrays::new(tokens)?;
    let mut params: Vec<&(dyn ToSql + Sync)> = arrays.params().to_vec();
    let family_id: Option<&[u8]> = family.map(|f| &f.id.0[..]);
    match (family, &family_id) {
        (Some(f), Some(id)) => {
            params.extend_from_slice(&[id, &f.client_id, &f.user, &f.grant_type, &f.created_at]);
            execute(c, context, &sql.insert_family_tokens, &params).await?;
        }
        _ if tokens.is_empty() => {}
        _ => {
            execute(c, context, &sql.insert_tokens, &params).await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Connecting and migrating

impl PostgresStore {
    /// The schema version this build migrates to.
    pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

    /// Connects: builds the pool, creates the schema when missing, applies the migrations it
    /// lacks, and starts listening for revocations. Returns once the listener is listening, so
    /// every revocation committed after this returns is heard.
    pub async fn connect(config: &PostgresConfig) -> Result<PostgresStore, StoreError> {
        let t = Target::new(config)?;
        let manager = Manager::from_config(
            t.pg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(t.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(t.timeout))
            .create_timeout(Some(t.connect_timeout))
            .recycle_timeout(Some(t.timeout))
            .build()
            .map_err(|e| StoreError::Backend(format!("postgres: building the pool: {e}")))?;
        // On a connection of its own, not a pooled one: the caller's runtime may be a
        // throwaway one (the gateway opens its store on one), and a pooled connection would
        // die with it.
        migrate_with(&t).await?;

        let (notices, _) = broadcast::channel(NOTICE_CAPACITY);
        let (stop, stopped) = oneshot::channel();
        let (ready, is_ready) = oneshot::channel();
        Listener {
            pg: t.pg.clone(),
            channel: t.channel.clone(),
            timeout: t.connect_timeout + t.timeout,
            notices: notices.clone(),
        }
        .spawn(stopped, ready)?;
        let wait = t.connect_timeout + t.timeout * 2;
        match tokio::time::timeout(wait, is_ready).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e),
            Ok(Err(_)) => {
                return Err(StoreError::Backend(
                    "postgres connect: the listener thread ended".into(),
                ))
            }
            Err(_) => {
                return Err(StoreError::Unavailable(
                    "postgres connect: LISTEN did not succeed in time".into(),
                ))
            }
        }

        Ok(PostgresStore {
            pool,
            sql: Sql::new(&t.quoted),
            schema: t.schema,
            channel: t.channel,
            deadline: t.connect_timeout + t.timeout * 3,
            notices,
            _stop: stop,
        })
    }

    /// Creates the schema when missing and applies the migrations it lacks, on one connection
    /// of its own, then disconnects. Returns the schema version now in force. Safe to run
    /// while instances are serving and from several places at once.
    pub async fn migrate(config: &PostgresConfig) -> Result<u32, StoreError> {
        migrate_with(&Target::new(config)?).await
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The channel revocations are notified on (see "Revocation notices" above).
    pub fn channel(&self) -> &str {
        &self.channel
    }

    async fn conn(&self, context: &str) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| pool_error(context, e))
    }

    /// Runs one store call, giving up at the deadline.
    async fn run<T>(
        &self,
        context: &str,
        f: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.deadline, f).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "postgres {context}: no answer within {:?}",
                self.deadline
            ))),
        }
    }
}

/// Migrates on a connection of its own, closed afterwards.
async fn migrate_with(t: &Target) -> Result<u32, StoreError> {
    let work = async {
        let (mut client, connection) = t.pg.connect(NoTls).await.ctx("migrate")?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "postgres migration connection ended");
            }
        });
        let r = apply_migrations(&mut client, t).await;
        drop(client);
        let _ = driver.await;
        r
    };
    // The connect timeout bounds the connecting; the statements have their own timeout.
    match tokio::time::timeout(t.connect_timeout + MIGRATION_TIMEOUT * 2, work).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Unavailable(
            "postgres migrate: no answer in time".into(),
        )),
    }
}

/// Brings the schema to [`MIGRATIONS`]' newest version in one transaction, under the
/// schema's advisory lock. Returns the version.
async fn apply_migrations(
    client: &mut tokio_postgres::Client,
    t: &Target,
) -> Result<u32, StoreError> {
    const C: &str = "migrate";
    let q = &t.quoted;
    let tx = client.transaction().await.ctx(C)?;
    // Waiting for another instance's migration may take longer than a request may. The
    // notices `IF NOT EXISTS` raises are noise.
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {}; SET LOCAL client_min_messages = warning",
        MIGRATION_TIMEOUT.max(t.timeout).as_millis()
    ))
    .await
    .ctx(C)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&migration_lock(&t.schema)],
    )
    .await
    .ctx(C)?;
    // Only when missing: CREATE SCHEMA needs a privilege that a deployment whose schema was
    // made for it need not have.
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&t.schema],
        )
        .await
        .ctx(C)?
        .get(0);
    if !exists {
        tx.batch_execute(&format!("CREATE SCHEMA {q}"))
            .await
            .ctx(C)?;
    }
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {q}.oauth_edge_migrations (
             version     integer PRIMARY KEY,
             applied_at  timestamptz NOT NULL DEFAULT now()
         )"
    ))
    .await
    .ctx(C)?;
    let current: i32 = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {q}.oauth_edge_migrations"),
            &[],
        )
        .await
        .ctx(C)?
        .get(0);
    let known = MIGRATIONS.len();
    let current = usize::try_from(current)
        .ok()
        .filter(|v| *v <= known)
        .ok_or_else(|| {
            StoreError::Backend(format!(
                "postgres migrate: schema {:?} is at version {current}, newer than this build \
                 knows (newest is {known})",
                t.schema
            ))
        })?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.batch_execute(&m.replace("{schema}", q)).await.ctx(C)?;
        tx.execute(
            &format!("INSERT INTO {q}.oauth_edge_migrations (version) VALUES ($1)"),
            &[&version],
        )
        .await
        .ctx(C)?;
        tracing::info!(schema = %t.schema, version, "applied postgres store migration");
    }
    tx.commit().await.ctx(C)?;
    Ok(known as u32)
}

// ---------------------------------------------------------------------------------------------
// The listener

struct Listener {
    pg: tokio_postgres::Config,
    channel: String,
    /// How long opening the connection and `LISTEN` may take.
    timeout: Duration,
    notices: broadcast::Sender<Notice>,
}

/// A listening connection: its client, the notifications its driver forwards, the driver.
type Session = (
    tokio_postgres::Client,
    mpsc::UnboundedReceiver<tokio_postgres::Notification>,
    tokio::task::JoinHandle<()>,
);

impl Listener {
    /// Runs the listener on a thread of its own. `ready` gets the outcome of the first
    /// `LISTEN`; after a failure there the thread ends.
    fn spawn(
        self,
        stop: oneshot::Receiver<()>,
        ready: oneshot::Sender<Result<(), StoreError>>,
    ) -> Result<(), StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("postgres listener runtime: {e}")))?;
        std::thread::Builder::new()
            .name("oauth-edge-pg-listen".into())
            .spawn(move || rt.block_on(self.run(stop, ready)))
            .map_err(|e| StoreError::Backend(format!("postgres listener thread: {e}")))?;
        Ok(())
    }

    async fn run(
        self,
        mut stop: oneshot::Receiver<()>,
        ready: oneshot::Sender<Result<(), StoreError>>,
    ) {
        let mut ready = Some(ready);
        let mut backoff = MIN_BACKOFF;
        loop {
            let opened = tokio::select! {
                _ = &mut stop => return,
                r = self.open() => r,
            };
            match opened {
                Ok((client, mut inbox, driver)) => {
                    match ready.take() {
                        Some(r) => {
                            if r.send(Ok(())).is_err() {
                                driver.abort();
                                return;
                            }
                        }
                        None => {
                            tracing::info!(
                                channel = %self.channel,
                                "revocation notices resumed; announcing a gap"
                            );
                            let _ = self.notices.send(Notice::Gap);
                        }
                    }
                    backoff = MIN_BACKOFF;
                    let stopped = self.serve(&client, &mut inbox, &mut stop).await;
                    driver.abort();
                    if stopped {
                        return;
                    }
                    tracing::warn!(
                        channel = %self.channel,
                        "lost the connection that listens for revocations; reconnecting"
                    );
                }
                Err(e) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(Err(e));
                        return;
                    }
                    tracing::warn!(
                        channel = %self.channel,
                        error = %e,
                        retry_in = ?backoff,
                        "could not listen for revocations"
                    );
                }
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Connects and listens.
    async fn open(&self) -> Result<Session, StoreError> {
        let work = async {
            let (client, mut connection) = self.pg.connect(NoTls).await.ctx("listen")?;
            let (tx, rx) = mpsc::unbounded_channel();
            let driver = tokio::spawn(async move {
                loop {
                    match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                        Some(Ok(AsyncMessage::Notification(n))) => {
                            if tx.send(n).is_err() {
                                return;
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "postgres listener connection failed");
                            return;
                        }
                        None => return,
                    }
                }
            });
            match client.batch_execute(&self.listen_sql()).await.ctx("listen") {
                Ok(()) => Ok((client, rx, driver)),
                Err(e) => {
                    driver.abort();
                    Err(e)
                }
            }
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(
                "postgres listen: no answer in time".into(),
            )),
        }
    }

    fn listen_sql(&self) -> String {
        format!("LISTEN {}", quote_ident(&self.channel))
    }

    /// Forwards notifications until the connection fails (`false`) or the store is dropped
    /// (`true`). Re-issues the `LISTEN` now and then to find out whether the connection still
    /// answers (a silently dropped connection would otherwise look like a quiet one); the
    /// statement stays the session's last, which keeps the listener easy to spot in
    /// `pg_stat_activity`.
    async fn serve(
        &self,
        client: &tokio_postgres::Client,
        inbox: &mut mpsc::UnboundedReceiver<tokio_postgres::Notification>,
        stop: &mut oneshot::Receiver<()>,
    ) -> bool {
        let listen = self.listen_sql();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                _ = &mut *stop => return true,
                n = inbox.recv() => match n {
                    Some(n) => self.deliver(n.payload()),
                    None => return false,
                },
                _ = heartbeat.tick() => {
                    let check = client.batch_execute(&listen);
                    match tokio::time::timeout(self.timeout, check).await {
                        Ok(Ok(())) => {}
                        _ => return false,
                    }
                }
            }
        }
    }

    fn deliver(&self, payload: &str) {
        match parse_payload(payload) {
            Some(notice) => {
                // No receiver is not an error: nobody is caching.
                let _ = self.notices.send(notice);
            }
            None => tracing::warn!(
                channel = %self.channel,
                "ignoring a notice that is not \"<family hex> <ms>\" or \"client <id>\""
            ),
        }
    }
}

/// Reads a notification's payload: `"<family hex> <ms>"` for a revocation, `"client <id>"`
/// for a client change.
fn parse_payload(payload: &str) -> Option<Notice> {
    if let Some(id) = payload.strip_prefix("client ") {
        return (!id.is_empty()).then(|| Notice::Client { id: id.into() });
    }
    let (family, at) = payload.split_once(' ')?;
    Some(Notice::Revoked {
        family: FamilyId::from_hex(family)?,
        at_ms: at.parse().ok()?,
    })
}

// ---------------------------------------------------------------------------------------------
// The store

impl PostgresStore {
    async fn do_issue(
        &self,
        family: Option<&NewFamily>,
        tokens: &[NewToken],
    ) -> Result<(), StoreError> {
        let conn = self.conn("issue").await?;
        insert_issue(&conn, &self.sql, "issue", family, tokens).await
    }

    async fn do_find(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        let conn = self.conn("find").await?;
        match query_opt(&conn, "find", &self.sql.find, &[&&hash.0[..]]).await? {
            Some(row) => Ok(Some(record(&row)?)),
            None => Ok(None),
        }
    }

    async fn do_rotate(
        &self,
        old: &TokenHash,
        kind: TokenKind,
        client_id: &str,
        now: UnixTime,
        new: &[NewToken],
    ) -> Result<Rotation, StoreError> {
        const C: &str = "rotate";
        let arrays = TokenArrays::new(new)?;
        let mut conn = self.conn(C).await?;
        let tx = conn.transaction().await.ctx(C)?;
        let old_hash = &old.0[..];
        // The family's row lock serialises everything that consumes its tokens or revokes it;
        // the reads after it see every such change committed before we got it.
        if query_opt(&tx, C, &self.sql.lock_family_of, &[&old_hash])
            .await?
            .is_none()
        {
            return Ok(Rotation::NotFound);
        }
        let rec = match query_opt(&tx, C, &self.sql.find, &[&old_hash]).await? {
            Some(row) => Some(record(&row)?),
            None => None,
        };
        match rotation_step(rec, kind, client_id, now) {
            RotationStep::Answer(r) => Ok(r),
            RotationStep::RevokeFamily(family) => {
                query(
                    &tx,
                    C,
                    &self.sql.revoke_one,
                    &[&now, &&family.0[..], &self.channel, &now_ms()],
                )
                .await?;
                tx.commit().await.ctx(C)?;
                Ok(Rotation::Replayed(family))
            }
            RotationStep::Consume(rec) => {
                let mut params: Vec<&(dyn ToSql + Sync)> = arrays.params().to_vec();
                params.extend_from_slice(&[&now, &old_hash]);
                execute(&tx, C, &self.sql.consume, &params).await?;
                tx.commit().await.ctx(C)?;
                Ok(Rotation::Rotated(rec))
            }
        }
    }

    async fn do_revoke_family(&self, family: &FamilyId, now: UnixTime) -> Result<(), StoreError> {
        const C: &str = "revoke_family";
        let conn = self.conn(C).await?;
        query(
            &conn,
            C,
            &self.sql.revoke_one,
            &[&now, &&family.0[..], &self.channel, &now_ms()],
        )
        .await?;
        Ok(())
    }

    async fn do_revoke_all(
        &self,
        client_id: Option<&str>,
        user: Option<&str>,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        const C: &str = "revoke_all";
        let ms = now_ms();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&now, &self.channel, &ms];
        let sql = match (&client_id, &user) {
            (None, None) => return Ok(Vec::new()),
            (Some(c), None) => {
                params.push(c);
                &self.sql.revoke_by_client
            }
            (None, Some(u)) => {
                params.push(u);
                &self.sql.revoke_by_user
            }
            (Some(c), Some(u)) => {
                params.push(c);
                params.push(u);
                &self.sql.revoke_by_both
            }
        };
        let conn = self.conn(C).await?;
        let rows = query(&conn, C, sql, &params).await?;
        family_ids(&rows)
    }

    async fn do_purge_expired(&self, before: UnixTime, limit: u32) -> Result<u64, StoreError> {
        const C: &str = "purge_expired";
        let limit = i64::from(limit);
        let mut conn = self.conn(C).await?;
        let tx = conn.transaction().await.ctx(C)?;
        // Code bindings go with their codes (ON DELETE CASCADE).
        let rows = query(&tx, C, &self.sql.purge_tokens, &[&before, &limit]).await?;
        let mut deleted = 0u64;
        let mut families = Vec::with_capacity(rows.len());
        for r in &rows {
            families.push(col::<Vec<u8>>(r, 0, "family id")?);
            deleted += u64::try_from(col::<i64>(r, 1, "count")?).unwrap_or(0);
        }
        if !families.is_empty() {
            execute(&tx, C, &self.sql.purge_families, &[&families]).await?;
        }
        // Expired device grants, in a batch of their own, not counted in the result.
        execute(&tx, C, &self.sql.purge_devices, &[&before, &limit]).await?;
        tx.commit().await.ctx(C)?;
        Ok(deleted)
    }

    async fn do_server_keys(&self) -> Result<Vec<ServerKey>, StoreError> {
        const C: &str = "server_keys";
        let conn = self.conn(C).await?;
        let load = || async {
            let rows = query(&conn, C, &self.sql.keys, &[]).await?;
            rows.iter()
                .map(|r| {
                    let id = u8::try_from(col::<i32>(r, 0, "server key id")?)
                        .map_err(|_| corrupt("server key id"))?;
                    let key = fixed(col(r, 1, "server key")?, "server key")?;
                    Ok(ServerKey::new(id, key))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        };
        let keys = load().await?;
        if !keys.is_empty() {
            return Ok(keys);
        }
        // Another instance may be doing the same: the loser's insert does nothing, and the
        // read after it sees the winner's key.
        let key = ServerKey::random(1);
        execute(
            &conn,
            C,
            &self.sql.insert_key,
            &[&i32::from(key.id), &&key.bytes()[..], &crate::unix_now()],
        )
        .await?;
        load().await
    }

    async fn do_client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let conn = self.conn("client").await?;
        match query_opt(&conn, "client", &self.sql.client, &[&id]).await? {
            Some(row) => Ok(Some(client_record(&row)?)),
            None => Ok(None),
        }
    }

    async fn do_create_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        const C: &str = "create_client";
        let settings = serde_json::to_string(&client.settings)
            .map_err(|e| StoreError::Backend(format!("postgres {C}: {e}")))?;
        let conn = self.conn(C).await?;
        let created = query(
            &conn,
            C,
            &self.sql.create_client,
            &[&client.id, &settings, &client.created_at, &self.channel],
        )
        .await?;
        if created.is_empty() {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn do_replace_client(
        &self,
        client: &ClientRecord,
        expected: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        const C: &str = "replace_client";
        let text = |v: &serde_json::Value| {
            serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("postgres {C}: {e}")))
        };
        let (settings, expected) = (text(&client.settings)?, text(expected)?);
        let conn = self.conn(C).await?;
        let replaced = query(
            &conn,
            C,
            &self.sql.replace_client,
            &[&client.id, &settings, &expected, &self.channel],
        )
        .await?;
        Ok(!replaced.is_empty())
    }

    async fn do_list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let conn = self.conn("list_clients").await?;
        query(&conn, "list_clients", &self.sql.list_clients, &[])
            .await?
            .iter()
            .map(client_record)
            .collect()
    }

    async fn do_delete_client(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        const C: &str = "delete_client";
        let mut conn = self.conn(C).await?;
        let tx = conn.transaction().await.ctx(C)?;
        query(
            &tx,
            C,
            &self.sql.revoke_by_client,
            &[&now, &self.channel, &now_ms(), &id],
        )
        .await?;
        let deleted = query(&tx, C, &self.sql.delete_client, &[&id, &self.channel]).await?;
        tx.commit().await.ctx(C)?;
        Ok(!deleted.is_empty())
    }

    async fn do_issue_code(
        &self,
        family: &NewFamily,
        code: &NewToken,
        binding: &CodeBinding,
    ) -> Result<(), StoreError> {
        const C: &str = "issue_code";
        check_code(family, code)?;
        let scopes = scopes_text(&code.scopes)?;
        let conn = self.conn(C).await?;
        execute(
            &conn,
            C,
            &self.sql.issue_code,
            &[
                &&family.id.0[..],
                &family.client_id,
                &family.user,
                &family.grant_type,
                &family.created_at,
                &&code.hash.0[..],
                &code.kind.as_str(),
                &scopes,
                &code.issued_at,
                &code.expires_at,
                &binding.redirect_uri,
                &binding.code_challenge,
            ],
        )
        .await?;
        Ok(())
    }

    async fn do_code_binding(&self, hash: &TokenHash) -> Result<Option<CodeBinding>, StoreError> {
        const C: &str = "code_binding";
        let conn = self.conn(C).await?;
        match query_opt(&conn, C, &self.sql.code_binding, &[&&hash.0[..]]).await? {
            Some(row) => Ok(Some(CodeBinding {
                redirect_uri: col(&row, 0, "redirect_uri")?,
                code_challenge: col(&row, 1, "code_challenge")?,
            })),
            None => Ok(None),
        }
    }

    async fn do_put_device_grant(&self, grant: &NewDeviceGrant) -> Result<(), StoreError> {
        const C: &str = "put_device_grant";
        let scopes = scopes_text(&grant.scopes)?;
        let hash = &grant.device_hash.0[..];
        let mut conn = self.conn(C).await?;
        let tx = conn.transaction().await.ctx(C)?;
        // A grant expired by now gives up its user code. Another device hash only: the same
        // one is a conflict whatever its state, which the insert reports.
        execute(
            &tx,
            C,
            &self.sql.drop_stale_device,
            &[&grant.user_code, &grant.created_at, &hash],
        )
        .await?;
        // A live grant holding the user code, or a grant with this device hash: `Conflict`.
        execute(
            &tx,
            C,
            &self.sql.insert_device,
            &[
                &hash,
                &grant.user_code,
                &grant.client_id,
                &scopes,
                &i64::from(grant.interval),
                &grant.created_at,
                &grant.expires_at,
            ],
        )
        .await?;
        tx.commit().await.ctx(C)
    }

    async fn do_device_grant_by_user_code(
        &self,
        user_code: &str,
        now: UnixTime,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        const C: &str = "device_grant_by_user_code";
        let conn = self.conn(C).await?;
        match query_opt(&conn, C, &self.sql.device_by_code, &[&user_code, &now]).await? {
            Some(row) => Ok(Some(device_grant(&row)?)),
            None => Ok(None),
        }
    }

    async fn do_decide_device_grant(
        &self,
        user_code: &str,
        user: &str,
        approve: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        const C: &str = "decide_device_grant";
        let status = if approve {
            DeviceStatus::Approved
        } else {
            DeviceStatus::Denied
        };
        let conn = self.conn(C).await?;
        // One conditional UPDATE: of two concurrent decisions, the second waits for the
        // first's row lock and then no longer finds the grant pending.
        let changed = execute(
            &conn,
            C,
            &self.sql.decide,
            &[&status.as_str(), &user, &user_code, &now],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn do_poll_device_grant(
        &self,
        device_hash: &TokenHash,
        client_id: &str,
        now_ms: i64,
        grace_ms: i64,
        issue: &DeviceTokens,
    ) -> Result<DevicePoll, StoreError> {
        const C: &str = "poll_device_grant";
        let hash = &device_hash.0[..];
        let mut conn = self.conn(C).await?;
        let tx = conn.transaction().await.ctx(C)?;
        // The row lock makes the read, the decision and the write one step: only one poll can
        // find the grant approved.
        let Some(row) = query_opt(&tx, C, &self.sql.lock_device, &[&hash]).await? else {
            return Ok(DevicePoll::NotFound);
        };
        let mut grant = device_grant(&row)?;
        let before = grant.clone();
        let outcome = poll_step(&mut grant, client_id, now_ms, grace_ms);
        if let DevicePoll::Approved(found) = &outcome {
            // In the same transaction: a conflict rolls the whole poll back.
            let (family, tokens) = issue.for_grant(found);
            insert_issue(&tx, &self.sql, C, Some(&family), &tokens).await?;
        }
        if grant != before {
            execute(
                &tx,
                C,
                &self.sql.update_device,
                &[
                    &grant.status.as_str(),
                    &i64::from(grant.interval),
                    &grant.last_poll_ms,
                    &hash,
                ],
            )
            .await?;
            tx.commit().await.ctx(C)?;
        }
        Ok(outcome)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn issue(
        &self,
        family: Option<&NewFamily>,
        tokens: &[NewToken],
    ) -> Result<(), StoreError> {
        self.run("issue", self.do_issue(family, tokens)).await
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        self.run("find", self.do_find(hash)).await
    }

    async fn rotate(
        &self,
        old: &TokenHash,
        kind: TokenKind,
        client_id: &str,
        now: UnixTime,
        new: &[NewToken],
    ) -> Result<Rotation, StoreError> {
        self.run("rotate", self.do_rotate(old, kind, client_id, now, new))
            .await
    }

    async fn revoke_family(&self, family: &FamilyId, now: UnixTime) -> Result<(), StoreError> {
        self.run("revoke_family", self.do_revoke_family(family, now))
            .await
    }

    async fn revoke_all(
        &self,
        client_id: Option<&str>,
        user: Option<&str>,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        self.run("revoke_all", self.do_revoke_all(client_id, user, now))
            .await
    }

    async fn purge_expired(&self, before: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.run("purge_expired", self.do_purge_expired(before, limit))
            .await
    }

    async fn server_keys(&self) -> Result<Vec<ServerKey>, StoreError> {
        self.run("server_keys", self.do_server_keys()).await
    }

    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.run("client", self.do_client(id)).await
    }

    async fn create_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.run("create_client", self.do_create_client(client))
            .await
    }

    async fn replace_client(
        &self,
        client: &ClientRecord,
        expected: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        self.run("replace_client", self.do_replace_client(client, expected))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", async {
            let conn = self.conn("ping").await?;
            query(&conn, "ping", "SELECT 1", &[]).await.map(drop)
        })
        .await
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.run("list_clients", self.do_list_clients()).await
    }

    async fn delete_client(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        self.run("delete_client", self.do_delete_client(id, now))
            .await
    }

    async fn issue_code(
        &self,
        family: &NewFamily,
        code: &NewToken,
        binding: &CodeBinding,
    ) -> Result<(), StoreError> {
        self.run("issue_code", self.do_issue_code(family, code, binding))
            .await
    }

    async fn code_binding(&self, hash: &TokenHash) -> Result<Option<CodeBinding>, StoreError> {
        self.run("code_binding", self.do_code_binding(hash)).await
    }

    async fn put_device_grant(&self, grant: &NewDeviceGrant) -> Result<(), StoreError> {
        self.run("put_device_grant", self.do_put_device_grant(grant))
            .await
    }

    async fn device_grant_by_user_code(
        &self,
        user_code: &str,
        now: UnixTime,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        self.run(
            "device_grant_by_user_code",
            self.do_device_grant_by_user_code(user_code, now),
        )
        .await
    }

    async fn decide_device_grant(
        &self,
        user_code: &str,
        user: &str,
        approve: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.run(
            "decide_device_grant",
            self.do_decide_device_grant(user_code, user, approve, now),
        )
        .await
    }

    async fn poll_device_grant(
        &self,
        device_hash: &TokenHash,
        client_id: &str,
        now_ms: i64,
        grace_ms: i64,
        issue: &DeviceTokens,
    ) -> Result<DevicePoll, StoreError> {
        self.run(
            "poll_device_grant",
            self.do_poll_device_grant(device_hash, client_id, now_ms, grace_ms, issue),
        )
        .await
    }

    fn notices(&self) -> Option<broadcast::Receiver<Notice>> {
        Some(self.notices.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn config(url: &str, schema: &str) -> PostgresConfig {
        PostgresConfig {
            url: Secret::new(url),
            schema: schema.into(),
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
        }
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["public", "oauth_edge", "Edge2", "_x", &"a".repeat(63)] {
            assert!(check_schema(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1abc", "a-b", "a b", "a\"b", "é", &"a".repeat(64)] {
            assert!(
                matches!(check_schema(bad), Err(StoreError::Backend(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn channels_are_per_schema_and_fit_an_identifier() {
        assert_eq!(channel_for("public"), "oauth_edge_revocations");
        assert_eq!(channel_for("edge"), "oauth_edge_revocations_edge");
        let long = "s".repeat(63);
        let c = channel_for(&long);
        assert!(c.len() <= MAX_IDENT, "{c}");
        assert!(c.starts_with("oauth_edge_revocations_"));
        assert_ne!(c, channel_for(&"t".repeat(63)));
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn payloads_round_trip_and_junk_is_ignored() {
        let f = FamilyId([0xab; 16]);
        assert_eq!(
            parse_payload(&format!("{} 1700000000123", f.to_hex())),
            Some(Notice::Revoked {
                family: f,
                at_ms: 1_700_000_000_123
            })
        );
        assert_eq!(
            parse_payload("client billing service"),
            Some(Notice::Client {
                id: "billing service".into()
            })
        );
        for junk in [
            "",
            "client ",
            "abc",
            "abc 1",
            &format!("{} x", f.to_hex()),
            &f.to_hex(),
        ] {
            assert_eq!(parse_payload(junk), None, "{junk}");
        }
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        let e = Target::new(&config("postgres://u:hunter2@host:notaport/db", "public"))
            .err()
            .expect("refused");
        let shown = e.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(matches!(e, StoreError::Backend(_)));
        let e = Target::new(&PostgresConfig {
            pool_size: 0,
            ..config("postgres://u@localhost/db", "public")
        })
        .err()
        .expect("refused");
        assert!(matches!(e, StoreError::Backend(_)));
    }

    #[test]
    fn the_statement_timeout_is_a_startup_option() {
        let t = Target::new(&config(
            "postgres://u@localhost/db?options=-c%20search_path%3Dx&application_name=mine",
            "public",
        ))
        .expect("target");
        assert_eq!(
            t.pg.get_options(),
            Some("-c search_path=x -c statement_timeout=2000")
        );
        assert_eq!(t.pg.get_application_name(), Some("mine"));
        assert_eq!(t.pg.get_connect_timeout(), Some(&Duration::from_secs(5)));
        let t = Target::new(&config("host=localhost user=u", "edge")).expect("target");
        assert_eq!(t.pg.get_options(), Some("-c statement_timeout=2000"));
        assert_eq!(t.pg.get_application_name(), Some("oauth-edge/edge"));
        assert_eq!(t.quoted, "\"edge\"");
    }

    #[test]
    fn transient_sqlstates_are_unavailable() {
        for code in [
            "57014", "57P01", "08006", "08001", "53300", "40001", "40P01",
        ] {
            assert!(is_transient(code), "{code}");
        }
        for code in ["23503", "23514", "42P01", "22021", "XX000"] {
            assert!(!is_transient(code), "{code}");
        }
    }

    #[test]
    fn migrations_name_only_the_schema_placeholder() {
        for m in MIGRATIONS {
            let filled = m.replace("{schema}", "\"s\"");
            assert!(!filled.contains('{') && !filled.contains('}'));
            assert!(
                !filled.contains("public."),
                "tables are qualified by the schema"
            );
        }
        assert_eq!(PostgresStore::SCHEMA_VERSION as usize, MIGRATIONS.len());
    }
}
