//! The embedded default store: one SQLite file.
//!
//! The file is opened in WAL mode so readers never wait for the writer. Writes go through one
//! connection behind a mutex (SQLite has a single writer anyway); reads use a small pool of
//! connections. All database work runs on tokio's blocking pool, so no async worker thread ever
//! waits on the disk. Several processes may share one file: every write is an `IMMEDIATE`
//! transaction and a busy database is retried for up to five seconds.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{
    ffi, params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior,
};

use super::rules::{check_code, poll_step, rotation_step, RotationStep};
use super::{
    ClientRecord, CodeBinding, DeviceGrant, DevicePoll, DeviceStatus, DeviceTokens, NewDeviceGrant,
    NewFamily, NewToken, Rotation, Store, StoreError, TokenRecord, UnixTime,
};
use crate::scope::Scopes;
use crate::tokens::{FamilyId, ServerKey, TokenHash, TokenKind};

/// How long a connection waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many idle reader connections are kept.
const READERS: usize = 4;

/// Schema migrations. Entry `i` takes the schema from version `i` to version `i + 1`; the
/// version is kept in `PRAGMA user_version`. Add new entries at the end, never edit old ones.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    "
    CREATE TABLE IF NOT EXISTS families (
        id          BLOB PRIMARY KEY,   -- 16 bytes
        client_id   TEXT NOT NULL,
        user_id     TEXT,
        grant_type  TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    );
    CREATE TABLE IF NOT EXISTS tokens (
        hash        BLOB PRIMARY KEY,   -- 32 bytes
        kind        TEXT NOT NULL,
        family      BLOB NOT NULL REFERENCES families(id) ON DELETE CASCADE,
        scopes      TEXT NOT NULL,
        issued_at   INTEGER NOT NULL,
        expires_at  INTEGER,
        consumed_at INTEGER
    );
    CREATE INDEX IF NOT EXISTS tokens_family ON tokens(family);
    CREATE INDEX IF NOT EXISTS tokens_expires_at ON tokens(expires_at);
    CREATE INDEX IF NOT EXISTS families_client_id ON families(client_id);
    CREATE INDEX IF NOT EXISTS families_user_id ON families(user_id);
    CREATE TABLE IF NOT EXISTS clients (
        id          TEXT PRIMARY KEY,
        settings    TEXT NOT NULL,      -- JSON
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS server_keys (
        id          INTEGER PRIMARY KEY,
        key         BLOB NOT NULL,
        created_at  INTEGER NOT NULL
    );
    ",
    // Version 2: authorization code bindings and device grants.
    "
    CREATE TABLE IF NOT EXISTS code_bindings (
        hash            BLOB PRIMARY KEY REFERENCES tokens(hash) ON DELETE CASCADE,
        redirect_uri    TEXT,
        code_challenge  TEXT
    );
    CREATE TABLE IF NOT EXISTS device_grants (
        device_hash     BLOB PRIMARY KEY,   -- 32 bytes
        user_code       TEXT NOT NULL,
        client_id       TEXT NOT NULL,
        scopes          TEXT NOT NULL,
        status          TEXT NOT NULL,      -- DeviceStatus::as_str
        user_id         TEXT,
        first_interval  INTEGER NOT NULL,   -- seconds, as written
        interval        INTEGER NOT NULL,   -- seconds, now in force
        last_poll_ms    INTEGER,
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX IF NOT EXISTS device_grants_user_code ON device_grants(user_code);
    CREATE INDEX IF NOT EXISTS device_grants_expires_at ON device_grants(expires_at);
    ",
];

/// A token row joined with its family row, as [`TokenRecord`] wants it.
const SELECT_RECORD: &str = "
    SELECT t.hash, t.kind, t.family, f.client_id, f.user_id, f.grant_type, t.scopes,
           t.issued_at, t.expires_at, t.consumed_at, f.revoked_at IS NOT NULL
    FROM tokens t JOIN families f ON f.id = t.family
    WHERE t.hash = ?1";

/// The columns [`RawDevice`] reads, in its order.
const SELECT_DEVICE: &str = "
    SELECT device_hash, user_code, client_id, scopes, status, user_id, first_interval,
           interval, last_poll_ms, created_at, expires_at
    FROM device_grants";

const INSERT_TOKEN: &str = "
    INSERT INTO tokens (hash, kind, family, scopes, issued_at, expires_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// How hard SQLite makes a commit durable before acknowledging it (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// The write-ahead log is synced to disk on every commit: every acknowledged write survives
    /// a power loss or an operating system crash. The default.
    #[default]
    Full,
    /// The write-ahead log is synced only at checkpoints: every acknowledged write survives the
    /// process crashing or being killed (`kill -9`), but the last few may be lost on a power
    /// loss or an operating system crash. The database itself is never corrupted. Faster.
    Normal,
}

impl Synchronous {
    fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// A [`Store`] in one SQLite file, in WAL mode. Cheap to share behind an `Arc`; several
/// processes may open the same file.
///
/// Durability of acknowledged writes depends on the [`Synchronous`] setting chosen at
/// [`SqliteStore::open`].
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("synchronous", &self.inner.sync)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: PathBuf,
    sync: Synchronous,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Issuances waiting for the next group commit.
    issues: Mutex<IssueQueue>,
}

/// Group commit of issuances: the first caller to find no batch running becomes the leader
/// and commits, on the blocking pool, everything queued meanwhile in one transaction (one
/// sync of the write-ahead log), each issuance in a savepoint of its own so that one failing
/// (a hash already stored) fails alone. It goes on while issuances keep arriving.
#[derive(Default)]
struct IssueQueue {
    waiting: Vec<PendingIssue>,
    leading: bool,
}

struct PendingIssue {
    family: Option<NewFamily>,
    tokens: Vec<NewToken>,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// What a closure running against the database can fail with.
enum Fail {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl Fail {
    fn into_store(self, context: &str) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Sql(e) => sql_error(context, &e),
        }
    }
}

/// Maps a rusqlite error. The messages rusqlite produces name tables, columns and constraints
/// but never bound parameter values, and only hashes are stored anyway.
fn sql_error(context: &str, e: &rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = e {
        match f.code {
            ErrorCode::ConstraintViolation
                if f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                return StoreError::Conflict;
            }
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied
            | ErrorCode::FileLockingProtocolFailed => {
                return StoreError::Unavailable(format!("sqlite {context}: {e}"));
            }
            _ => {}
        }
    }
    StoreError::Backend(format!("sqlite {context}: {e}"))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("sqlite: corrupted row: {what}"))
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, switches it to WAL mode and
    /// brings its schema up to date. Blocks; call it at start-up.
    ///
    /// `path` must name a file: an in-memory database (`:memory:`) is refused because every
    /// connection would see a different one; use [`MemoryStore`](super::MemoryStore) instead.
    pub fn open(path: impl AsRef<Path>, sync: Synchronous) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let s = path.to_string_lossy();
        if s.is_empty() || s == ":memory:" || s.starts_with("file::memory:") {
            return Err(StoreError::Backend(
                "sqlite open: an in-memory database cannot be shared between connections; \
                 give a file path"
                    .into(),
            ));
        }
        private_files(&path)?;
        let mut writer = Connection::open(&path).map_err(|e| sql_error("open", &e))?;
        Self::setup_writer(&mut writer, sync).map_err(|e| e.into_store("open"))?;
        let reader = open_reader(&path)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                sync,
                writer: Mutex::new(writer),
                readers: Mutex::new(vec![reader]),
                issues: Mutex::default(),
            }),
        })
    }

    fn setup_writer(conn: &mut Connection, sync: Synchronous) -> Result<(), Fail> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "sqlite open: could not switch to WAL journal mode (still {mode})"
            ))
            .into());
        }
        conn.pragma_update(None, "synchronous", sync.pragma_value())?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(conn)
    }

    /// Runs `f` against the inner state on tokio's blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        match tokio::task::spawn_blocking(move || f(&inner)).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => {
                Err(StoreError::Backend("sqlite: store task panicked".into()))
            }
            Err(_) => Err(StoreError::Backend(
                "sqlite: store task was cancelled".into(),
            )),
        }
    }
}

/// Brings the schema to the newest version, in one transaction so that two processes opening
/// a new file at once do not both migrate it.
fn migrate(conn: &mut Connection) -> Result<(), Fail> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len();
    let current = usize::try_from(version)
        .ok()
        .filter(|v| *v <= known)
        .ok_or_else(|| {
            StoreError::Backend(format!(
                "sqlite open: schema version {version} is not one this build knows \
                 (newest is {known})"
            ))
        })?;
    if current == known {
        return Ok(());
    }
    for m in &MIGRATIONS[current..] {
        tx.execute_batch(m)?;
    }
    tx.pragma_update(None, "user_version", known as i64)?;
    tx.commit()?;
    Ok(())
}

/// The file holds the server keys, which sign tokens and seal sign-in sessions: it is created
/// `0600` (SQLite gives its `-wal` and `-shm` files the database's mode) in a directory created
/// `0700`, and an existing one open to group or others is refused.
fn private_files(path: &Path) -> Result<(), StoreError> {
    let io = |e: std::io::Error| {
        StoreError::Unavailable(format!("sqlite open: {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            crate::files::create_private_dir(dir).map_err(io)?;
        }
    }
    crate::files::create_private_file(path).map_err(io)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        crate::files::check_private(Path::new(&name), "the server keys")
            .map_err(|e| StoreError::Backend(format!("sqlite open: {e}")))?;
    }
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    // No CREATE flag: if the file has gone away, fail rather than read a fresh empty database.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn =
        Connection::open_with_flags(path, flags).map_err(|e| sql_error("open reader", &e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .and_then(|()| conn.pragma_update(None, "query_only", "ON"))
        .map_err(|e| sql_error("open reader", &e))?;
    Ok(conn)
}

impl Inner {
    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves at worst an open transaction, which `write`
        // rolls back before the next use.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the writer connection.
    fn write<T>(
        &self,
        context: &str,
        f: impl FnOnce(&mut Connection) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer();
        start_clean(&conn).map_err(|e| sql_error(context, &e))?;
        f(&mut conn).map_err(|e| e.into_store(context))
    }

    /// Runs `f` on a pooled reader connection.
    fn read<T>(
        &self,
        context: &str,
        f: impl FnOnce(&Connection) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let r = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < READERS {
            pool.push(conn);
        }
        drop(pool);
        r.map_err(|e| e.into_store(context))
    }
}

/// A token row joined with its family, before validation.
struct RawRecord {
    hash: Vec<u8>,
    kind: String,
    family: Vec<u8>,
    client_id: String,
    user: Option<String>,
    grant_type: String,
    scopes: String,
    issued_at: i64,
    expires_at: Option<i64>,
    consumed_at: Option<i64>,
    revoked: bool,
}

impl RawRecord {
    fn into_record(self) -> Result<TokenRecord, StoreError> {
        Ok(TokenRecord {
            hash: TokenHash(blob(self.hash, "token hash")?),
            kind: TokenKind::parse(&self.kind).ok_or_else(|| corrupt("token kind"))?,
            family: FamilyId(blob(self.family, "family id")?),
            client_id: self.client_id,
            user: self.user,
            grant_type: self.grant_type,
            scopes: Scopes::parse(&self.scopes).map_err(|_| corrupt("scopes"))?,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            consumed_at: self.consumed_at,
            revoked: self.revoked,
        })
    }
}

fn blob<const N: usize>(v: Vec<u8>, what: &str) -> Result<[u8; N], StoreError> {
    v.try_into().map_err(|_| corrupt(what))
}

fn find_record(conn: &Connection, hash: &TokenHash) -> Result<Option<TokenRecord>, Fail> {
    let raw = conn
        .prepare_cached(SELECT_RECORD)?
        .query_row([&hash.0[..]], |r| {
            Ok(RawRecord {
                hash: r.get(0)?,
                kind: r.get(1)?,
                family: r.get(2)?,
                client_id: r.get(3)?,
                user: r.get(4)?,
                grant_type: r.get(5)?,
                scopes: r.get(6)?,
                issued_at: r.get(7)?,
                expires_at: r.get(8)?,
                consumed_at: r.get(9)?,
                revoked: r.get(10)?,
            })
        })
        .optional()?;
    match raw {
        Some(raw) => Ok(Some(raw.into_record()?)),
        None => Ok(None),
    }
}

/// The text a scope set is stored as. Refuses a set that would not read back as itself (one
/// built with [`Scopes::from_iter`] from a scope outside RFC 6749's grammar), rather than
/// storing a row that every later read would reject, or that would read back as other scopes.
fn scopes_text(scopes: &Scopes) -> Result<String, StoreError> {
    let text = scopes.to_string();
    match Scopes::parse(&text) {
        Ok(back) if back == *scopes => Ok(text),
        _ => Err(StoreError::Backend(
            "sqlite: scope set cannot be stored as a space-delimited string".into(),
        )),
    }
}

fn insert_tokens(conn: &Connection, tokens: &[NewToken]) -> Result<(), Fail> {
    if tokens.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(INSERT_TOKEN)?;
    for t in tokens {
        stmt.execute(params![
            &t.hash.0[..],
            t.kind.as_str(),
            &t.family.0[..],
            scopes_text(&t.scopes)?,
            t.issued_at,
            t.expires_at,
        ])?;
    }
    Ok(())
}

/// Writes `family` (when given) and `tokens` inside the caller's transaction.
fn insert_issue(
    conn: &Connection,
    family: Option<&NewFamily>,
    tokens: &[NewToken],
) -> Result<(), Fail> {
    if let Some(f) = family {
        conn.prepare_cached(
            "INSERT INTO families (id, client_id, user_id, grant_type, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            &f.id.0[..],
            f.client_id,
            f.user,
            f.grant_type,
            f.created_at
        ])?;
    }
    insert_tokens(conn, tokens)
}

/// Rolls back a transaction left open on the writer by a panic or a failed rollback.
fn start_clean(conn: &Connection) -> rusqlite::Result<()> {
    if conn.is_autocommit() {
        return Ok(());
    }
    conn.execute_batch("ROLLBACK")
}

/// Writes every issuance of `batch` in one transaction, each in a savepoint: what one fails
/// with is its own answer; a failed commit is everyone's.
fn issue_batch(conn: &mut Connection, batch: &[PendingIssue]) -> Vec<Result<(), StoreError>> {
    let all = |e: StoreError| vec![Err(e); batch.len()];
    if let Err(e) = start_clean(conn) {
        return all(sql_error("issue", &e));
    }
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return all(sql_error("issue", &e)),
    };
    let mut results = Vec::with_capacity(batch.len());
    for p in batch {
        let one = (|| {
            let sp = tx.savepoint()?;
            insert_issue(&sp, p.family.as_ref(), &p.tokens)?;
            sp.commit()?;
            Ok::<(), Fail>(())
        })();
        // A savepoint dropped without its commit is rolled back: the failed issuance leaves
        // nothing behind.
        results.push(one.map_err(|e| e.into_store("issue")));
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => all(sql_error("issue", &e)),
    }
}

/// A device grant row, before validation.
struct RawDevice {
    device_hash: Vec<u8>,
    user_code: String,
    client_id: String,
    scopes: String,
    status: String,
    user: Option<String>,
    first_interval: i64,
    interval: i64,
    last_poll_ms: Option<i64>,
    created_at: i64,
    expires_at: i64,
}

impl RawDevice {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawDevice {
            device_hash: r.get(0)?,
            user_code: r.get(1)?,
            client_id: r.get(2)?,
            scopes: r.get(3)?,
            status: r.get(4)?,
            user: r.get(5)?,
            first_interval: r.get(6)?,
            interval: r.get(7)?,
            last_poll_ms: r.get(8)?,
            created_at: r.get(9)?,
            expires_at: r.get(10)?,
        })
    }

    fn into_grant(self) -> Result<DeviceGrant, StoreError> {
        let interval = |v: i64| u32::try_from(v).map_err(|_| corrupt("device grant interval"));
        Ok(DeviceGrant {
            grant: NewDeviceGrant {
                device_hash: TokenHash(blob(self.device_hash, "device hash")?),
                user_code: self.user_code,
                client_id: self.client_id,
                scopes: Scopes::parse(&self.scopes).map_err(|_| corrupt("scopes"))?,
                interval: interval(self.first_interval)?,
                created_at: self.created_at,
                expires_at: self.expires_at,
            },
            status: DeviceStatus::parse(&self.status)
                .ok_or_else(|| corrupt("device grant status"))?,
            user: self.user,
            interval: interval(self.interval)?,
            last_poll_ms: self.last_poll_ms,
        })
    }
}

fn find_device(conn: &Connection, hash: &TokenHash) -> Result<Option<DeviceGrant>, Fail> {
    let raw = conn
        .prepare_cached(&format!("{SELECT_DEVICE} WHERE device_hash = ?1"))?
        .query_row([&hash.0[..]], RawDevice::from_row)
        .optional()?;
    match raw {
        Some(raw) => Ok(Some(raw.into_grant()?)),
        None => Ok(None),
    }
}

fn revoke(conn: &Connection, family: &FamilyId, now: UnixTime) -> Result<(), Fail> {
    conn.prepare_cached(
        "UPDATE families SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
    )?
    .execute(params![now, &family.0[..]])?;
    Ok(())
}

fn read_client(id: String, settings: String, created_at: i64) -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        id,
        settings: serde_json::from_str(&settings).map_err(|_| corrupt("client settings"))?,
        created_at,
    })
}

impl Inner {
    /// The leader's loop (see [`IssueQueue`]): takes the writer, then everything queued, and
    /// commits it; stops when nothing more is waiting.
    fn commit_issues(&self) {
        loop {
            let mut conn = self.writer();
            let batch = {
                let mut q = self.issues.lock().unwrap_or_else(|e| e.into_inner());
                if q.waiting.is_empty() {
                    q.leading = false;
                    return;
                }
                std::mem::take(&mut q.waiting)
            };
            let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                issue_batch(&mut conn, &batch)
            }))
            .unwrap_or_else(|_| {
                let e = StoreError::Backend("sqlite: issue batch panicked".into());
                vec![Err(e); batch.len()]
            });
            drop(conn);
            for (p, r) in batch.into_iter().zip(results) {
                // A caller that went away no longer waits for its answer.
                let _ = p.done.send(r);
            }
        }
    }

    fn issue_code(
        &self,
        family: &NewFamily,
        code: &NewToken,
        binding: &CodeBinding,
    ) -> Result<(), StoreError> {
        check_code(family, code)?;
        self.write("issue_code", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert_issue(&tx, Some(family), std::slice::from_ref(code))?;
            tx.prepare_cached(
                "INSERT INTO code_bindings (hash, redirect_uri, code_challenge)
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                &code.hash.0[..],
                binding.redirect_uri,
                binding.code_challenge
            ])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn code_binding(&self, hash: &TokenHash) -> Result<Option<CodeBinding>, StoreError> {
        self.read("code_binding", |conn| {
            let binding = conn
                .prepare_cached(
                    "SELECT redirect_uri, code_challenge FROM code_bindings WHERE hash = ?1",
                )?
                .query_row([&hash.0[..]], |r| {
                    Ok(CodeBinding {
                        redirect_uri: r.get(0)?,
                        code_challenge: r.get(1)?,
                    })
                })
                .optional()?;
            Ok(binding)
        })
    }

    fn put_device_grant(&self, grant: &NewDeviceGrant) -> Result<(), StoreError> {
        let scopes = scopes_text(&grant.scopes)?;
        self.write("put_device_grant", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // A grant expired by now gives up its user code. Another device hash only: the
            // same one is a conflict whatever its state, which the insert reports.
            tx.prepare_cached(
                "DELETE FROM device_grants
                 WHERE user_code = ?1 AND expires_at <= ?2 AND device_hash <> ?3",
            )?
            .execute(params![
                grant.user_code,
                grant.created_at,
                &grant.device_hash.0[..]
            ])?;
            // A live grant holding the user code, or a grant with this device hash, makes
            // the insert fail on the unique index or the primary key: `Conflict`.
            tx.prepare_cached(
                "INSERT INTO device_grants (device_hash, user_code, client_id, scopes, status,
                     first_interval, interval, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
            )?
            .execute(params![
                &grant.device_hash.0[..],
                grant.user_code,
                grant.client_id,
                scopes,
                DeviceStatus::Pending.as_str(),
                i64::from(grant.interval),
                grant.created_at,
                grant.expires_at,
            ])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn device_grant_by_user_code(
        &self,
        user_code: &str,
        now: UnixTime,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        self.read("device_grant_by_user_code", |conn| {
            let raw = conn
                .prepare_cached(&format!(
                    "{SELECT_DEVICE} WHERE user_code = ?1 AND expires_at > ?2"
                ))?
                .query_row(params![user_code, now], RawDevice::from_row)
                .optional()?;
            match raw {
                Some(raw) => Ok(Some(raw.into_grant()?)),
                None => Ok(None),
            }
        })
    }

    fn decide_device_grant(
        &self,
        user_code: &str,
        user: &str,
        approve: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let status = if approve {
            DeviceStatus::Approved
        } else {
            DeviceStatus::Denied
        };
        self.write("decide_device_grant", |conn| {
            // One conditional UPDATE: of two concurrent decisions, only one finds it pending.
            let changed = conn
                .prepare_cached(
                    "UPDATE device_grants SET status = ?1, user_id = ?2
                     WHERE user_code = ?3 AND status = ?4 AND expires_at > ?5",
                )?
                .execute(params![
                    status.as_str(),
                    user,
                    user_code,
                    DeviceStatus::Pending.as_str(),
                    now
                ])?;
            Ok(changed > 0)
        })
    }

    fn poll_device_grant(
        &self,
        device_hash: &TokenHash,
        client_id: &str,
        now_ms: i64,
        grace_ms: i64,
        issue: &DeviceTokens,
    ) -> Result<DevicePoll, StoreError> {
        self.write("poll_device_grant", |conn| {
            // IMMEDIATE: the read, the decision and the write are one step for every
            // connection and process, so only one poll can see the grant approved.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(mut grant) = find_device(&tx, device_hash)? else {
                return Ok(DevicePoll::NotFound);
            };
            let before = grant.clone();
            let outcome = poll_step(&mut grant, client_id, now_ms, grace_ms);
            if let DevicePoll::Approved(found) = &outcome {
                // In the same transaction: a conflict rolls the whole poll back.
                let (family, tokens) = issue.for_grant(found);
                insert_issue(&tx, Some(&family), &tokens)?;
            }
            if grant != before {
                tx.prepare_cached(
                    "UPDATE device_grants SET status = ?1, interval = ?2, last_poll_ms = ?3
                     WHERE device_hash = ?4",
                )?
                .execute(params![
                    grant.status.as_str(),
                    i64::from(grant.interval),
                    grant.last_poll_ms,
                    &device_hash.0[..]
                ])?;
                tx.commit()?;
            }
            Ok(outcome)
        })
    }

    fn find(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        self.read("find", |conn| find_record(conn, hash))
    }

    fn rotate(
        &self,
        old: &TokenHash,
        kind: TokenKind,
        client_id: &str,
        now: UnixTime,
        new: &[NewToken],
    ) -> Result<Rotation, StoreError> {
        self.write("rotate", |conn| {
            // IMMEDIATE takes the write lock before reading, so the checks below and the
            // write that follows them are one step for every connection and process.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            match rotation_step(find_record(&tx, old)?, kind, client_id, now) {
                RotationStep::Answer(r) => Ok(r),
                RotationStep::RevokeFamily(family) => {
                    revoke(&tx, &family, now)?;
                    tx.commit()?;
                    Ok(Rotation::Replayed(family))
                }
                RotationStep::Consume(rec) => {
                    tx.prepare_cached("UPDATE tokens SET consumed_at = ?1 WHERE hash = ?2")?
                        .execute(params![now, &old.0[..]])?;
                    insert_tokens(&tx, new)?;
                    tx.commit()?;
                    Ok(Rotation::Rotated(rec))
                }
            }
        })
    }

    fn revoke_family(&self, family: &FamilyId, now: UnixTime) -> Result<(), StoreError> {
        self.write("revoke_family", |conn| revoke(conn, family, now))
    }

    fn revoke_all(
        &self,
        client_id: Option<&str>,
        user: Option<&str>,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        const BASE: &str = "UPDATE families SET revoked_at = ?1 WHERE revoked_at IS NULL";
        let (sql, params): (String, Vec<&str>) = match (client_id, user) {
            (None, None) => return Ok(Vec::new()),
            (Some(c), None) => (format!("{BASE} AND client_id = ?2 RETURNING id"), vec![c]),
            (None, Some(u)) => (format!("{BASE} AND user_id = ?2 RETURNING id"), vec![u]),
            (Some(c), Some(u)) => (
                format!("{BASE} AND client_id = ?2 AND user_id = ?3 RETURNING id"),
                vec![c, u],
            ),
        };
        self.write("revoke_all", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let raw = {
                let mut stmt = tx.prepare_cached(&sql)?;
                let mut bound: Vec<&dyn rusqlite::ToSql> = vec![&now];
                bound.extend(params.iter().map(|p| p as &dyn rusqlite::ToSql));
                let rows = stmt.query_map(&bound[..], |r| r.get::<_, Vec<u8>>(0))?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            tx.commit()?;
            let mut out = raw
                .into_iter()
                .map(|b| blob(b, "family id").map(FamilyId))
                .collect::<Result<Vec<_>, _>>()?;
            out.sort();
            Ok(out)
        })
    }

    fn purge_expired(&self, before: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.write("purge_expired", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let deleted = tx
                .prepare_cached(
                    "DELETE FROM tokens WHERE hash IN
                     (SELECT hash FROM tokens WHERE expires_at < ?1 LIMIT ?2)",
                )?
                .execute(params![before, i64::from(limit)])?;
            // Code bindings go with their codes (ON DELETE CASCADE). Expired device grants
            // go in a batch of their own, not counted in the result.
            tx.prepare_cached(
                "DELETE FROM device_grants WHERE device_hash IN
                 (SELECT device_hash FROM device_grants WHERE expires_at < ?1 LIMIT ?2)",
            )?
            .execute(params![before, i64::from(limit)])?;
            tx.prepare_cached(
                "DELETE FROM families
                 WHERE NOT EXISTS (SELECT 1 FROM tokens WHERE tokens.family = families.id)",
            )?
            .execute([])?;
            tx.commit()?;
            Ok(deleted as u64)
        })
    }

    fn server_keys(&self, now: UnixTime) -> Result<Vec<ServerKey>, StoreError> {
        let load = |conn: &Connection| -> Result<Vec<ServerKey>, Fail> {
            let mut stmt = conn.prepare_cached("SELECT id, key FROM server_keys ORDER BY id")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            let keys = rows
                .into_iter()
                .map(|(id, key)| {
                    let id = u8::try_from(id).map_err(|_| corrupt("server key id"))?;
                    Ok(ServerKey::new(id, blob(key, "server key")?))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(keys)
        };
        let keys = self.read("server_keys", load)?;
        if !keys.is_empty() {
            return Ok(keys);
        }
        self.write("server_keys", |conn| {
            // Another process may be doing the same: the IMMEDIATE transaction serialises
            // us, and whoever comes second sees the first one's key.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let empty: bool =
                tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM server_keys)", [], |r| {
                    r.get(0)
                })?;
            if empty {
                let key = ServerKey::random(1);
                tx.execute(
                    "INSERT OR IGNORE INTO server_keys (id, key, created_at) VALUES (?1, ?2, ?3)",
                    params![i64::from(key.id), &key.bytes()[..], now],
                )?;
            }
            let keys = load(&tx)?;
            tx.commit()?;
            Ok(keys)
        })
    }

    fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.read("client", |conn| {
            let row = conn
                .prepare_cached("SELECT id, settings, created_at FROM clients WHERE id = ?1")?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            match row {
                Some((id, settings, created_at)) => {
                    Ok(Some(read_client(id, settings, created_at)?))
                }
                None => Ok(None),
            }
        })
    }

    fn create_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let settings = serde_json::to_string(&client.settings)
            .map_err(|e| StoreError::Backend(format!("sqlite create_client: {e}")))?;
        // A taken id fails on the primary key: `Conflict`.
        self.write("create_client", |conn| {
            conn.prepare_cached(
                "INSERT INTO clients (id, settings, created_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![client.id, settings, client.created_at])?;
            Ok(())
        })
    }

    fn replace_client(
        &self,
        client: &ClientRecord,
        expected: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let text = |v: &serde_json::Value| {
            serde_json::to_string(v)
                .map_err(|e| StoreError::Backend(format!("sqlite replace_client: {e}")))
        };
        let (settings, expected) = (text(&client.settings)?, text(expected)?);
        // The settings are stored as `serde_json` wrote them, so the text compares as the
        // value does.
        self.write("replace_client", |conn| {
            let n = conn
                .prepare_cached("UPDATE clients SET settings = ?2 WHERE id = ?1 AND settings = ?3")?
                .execute(params![client.id, settings, expected])?;
            Ok(n > 0)
        })
    }

    fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.read("list_clients", |conn| {
            let rows = conn
                .prepare_cached("SELECT id, settings, created_at FROM clients ORDER BY id")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<(String, String, i64)>, _>>()?;
            let clients = rows
                .into_iter()
                .map(|(id, settings, created_at)| read_client(id, settings, created_at))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(clients)
        })
    }

    fn delete_client(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        self.write("delete_client", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(
                "UPDATE families SET revoked_at = ?1 WHERE client_id = ?2 AND revoked_at IS NULL",
            )?
            .execute(params![now, id])?;
            let deleted = tx
                .prepare_cached("DELETE FROM clients WHERE id = ?1")?
                .execute([id])?;
            tx.commit()?;
            Ok(deleted > 0)
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn issue(
        &self,
        family: Option<&NewFamily>,
        tokens: &[NewToken],
    ) -> Result<(), StoreError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let lead = {
            let mut q = self.inner.issues.lock().unwrap_or_else(|e| e.into_inner());
            q.waiting.push(PendingIssue {
                family: family.cloned(),
                tokens: tokens.to_vec(),
                done,
            });
            !std::mem::replace(&mut q.leading, true)
        };
        if lead {
            // Detached: the batch is committed and answered even if this caller goes away.
            let inner = Arc::clone(&self.inner);
            tokio::task::spawn_blocking(move || inner.commit_issues());
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Backend("sqlite: issue was dropped".into())))
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        let hash = *hash;
        self.run(move |s| s.find(&hash)).await
    }

    async fn rotate(
        &self,
        old: &TokenHash,
        kind: TokenKind,
        client_id: &str,
        now: UnixTime,
        new: &[NewToken],
    ) -> Result<Rotation, StoreError> {
        let old = *old;
        let client_id = client_id.to_owned();
        let new = new.to_vec();
        self.run(move |s| s.rotate(&old, kind, &client_id, now, &new))
            .await
    }

    async fn revoke_family(&self, family: &FamilyId, now: UnixTime) -> Result<(), StoreError> {
        let family = *family;
        self.run(move |s| s.revoke_family(&family, now)).await
    }

    async fn revoke_all(
        &self,
        client_id: Option<&str>,
        user: Option<&str>,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        let client_id = client_id.map(str::to_owned);
        let user = user.map(str::to_owned);
        self.run(move |s| s.revoke_all(client_id.as_deref(), user.as_deref(), now))
            .await
    }

    async fn purge_expired(&self, before: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.run(move |s| s.purge_expired(before, limit)).await
    }

    async fn server_keys(&self) -> Result<Vec<ServerKey>, StoreError> {
        let now = crate::unix_now();
        self.run(move |s| s.server_keys(now)).await
    }

    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |s| s.client(&id)).await
    }

    async fn create_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let client = client.clone();
        self.run(move |s| s.create_client(&client)).await
    }

    async fn replace_client(
        &self,
        client: &ClientRecord,
        expected: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let (client, expected) = (client.clone(), expected.clone());
        self.run(move |s| s.replace_client(&client, &expected))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|s| {
            s.read("ping", |conn| {
                Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?)
            })
        })
        .await
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.run(|s| s.list_clients()).await
    }

    async fn delete_client(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.run(move |s| s.delete_client(&id, now)).await
    }

    async fn issue_code(
        &self,
        family: &NewFamily,
        code: &NewToken,
        binding: &CodeBinding,
    ) -> Result<(), StoreError> {
        let (family, code, binding) = (family.clone(), code.clone(), binding.clone());
        self.run(move |s| s.issue_code(&family, &code, &binding))
            .await
    }

    async fn code_binding(&self, hash: &TokenHash) -> Result<Option<CodeBinding>, StoreError> {
        let hash = *hash;
        self.run(move |s| s.code_binding(&hash)).await
    }

    async fn put_device_grant(&self, grant: &NewDeviceGrant) -> Result<(), StoreError> {
        let grant = grant.clone();
        self.run(move |s| s.put_device_grant(&grant)).await
    }

    async fn device_grant_by_user_code(
        &self,
        user_code: &str,
        now: UnixTime,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        let user_code = user_code.to_owned();
        self.run(move |s| s.device_grant_by_user_code(&user_code, now))
            .await
    }

    async fn decide_device_grant(
        &self,
        user_code: &str,
        user: &str,
        approve: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let (user_code, user) = (user_code.to_owned(), user.to_owned());
        self.run(move |s| s.decide_device_grant(&user_code, &user, approve, now))
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
        let device_hash = *device_hash;
        let client_id = client_id.to_owned();
        let issue = issue.clone();
        self.run(move |s| s.poll_device_grant(&device_hash, &client_id, now_ms, grace_ms, &issue))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_tokens() -> DeviceTokens {
        DeviceTokens {
            family: FamilyId::random(),
            grant_type: "device".into(),
            issued_at: 0,
            tokens: vec![(
                TokenHash(*blake3::hash(FamilyId::random().to_hex().as_bytes()).as_bytes()),
                TokenKind::Access,
                None,
            )],
        }
    }

    const NOW: UnixTime = 1_700_000_000;

    fn family(id: u8, client: &str) -> NewFamily {
        NewFamily {
            id: FamilyId([id; 16]),
            client_id: client.into(),
            user: Some("alice".into()),
            grant_type: "password".into(),
            created_at: NOW,
        }
    }

    fn token(name: &str, kind: TokenKind, family: u8) -> NewToken {
        NewToken {
            hash: TokenHash::of(name),
            kind,
            family: FamilyId([family; 16]),
            scopes: Scopes::parse("read write").expect("valid scopes"),
            issued_at: NOW,
            expires_at: Some(NOW + 3600),
        }
    }

    fn open(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(dir.path().join("edge.db"), Synchronous::Full).expect("open")
    }

    /// Many issuances at once share commits; one whose hash is already stored fails alone,
    /// and leaves nothing of itself behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_issuances_are_committed_together_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(open(&dir));
        s.issue(
            Some(&family(200, "app")),
            &[token("taken", TokenKind::Access, 200)],
        )
        .await
        .expect("issue");
        let mut tasks = Vec::new();
        for i in 0..64u8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                // Number 7 brings a second, new token beside one already stored.
                let mut tokens = vec![token(&format!("t{i}"), TokenKind::Access, i)];
                if i == 7 {
                    tokens.push(token("taken", TokenKind::Access, i));
                }
                s.issue(Some(&family(i, "app")), &tokens).await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let r = t.await.unwrap();
            if i == 7 {
                assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
            } else {
                r.expect("issue");
            }
        }
        for i in 0..64u8 {
            let found = s.find(&TokenHash::of(&format!("t{i}"))).await.unwrap();
            assert_eq!(found.is_some(), i != 7, "t{i}");
        }
        let taken = s.find(&TokenHash::of("taken")).await.unwrap().unwrap();
        assert_eq!(taken.family, FamilyId([200; 16]));
        // Issuance goes on after a failure.
        s.issue(
            Some(&family(100, "app")),
            &[token("after", TokenKind::Access, 100)],
        )
        .await
        .expect("issue");
    }

    #[tokio::test]
    async fn records_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let access = token("access", TokenKind::Access, 1);
        let refresh = token("refresh", TokenKind::Refresh, 1);
        let next = token("next", TokenKind::Refresh, 1);
        let other = token("other", TokenKind::Access, 2);
        let before = {
            let s = open(&dir);
            s.issue(Some(&family(1, "app")), &[access.clone(), refresh.clone()])
                .await
                .expect("issue");
            s.issue(Some(&family(2, "app")), std::slice::from_ref(&other))
                .await
                .expect("issue");
            s.find(&access.hash).await.expect("find").expect("found")
        };

        let s = open(&dir);
        assert_eq!(s.find(&access.hash).await.expect("find"), Some(before));
        let r = s
            .rotate(
                &refresh.hash,
                TokenKind::Refresh,
                "app",
                NOW + 1,
                std::slice::from_ref(&next),
            )
            .await
            .expect("rotate");
        assert!(matches!(r, Rotation::Rotated(_)), "{r:?}");
        s.revoke_family(&FamilyId([2; 16]), NOW + 2)
            .await
            .expect("revoke");
        drop(s);

        let s = open(&dir);
        let consumed = s.find(&refresh.hash).await.expect("find").expect("found");
        assert_eq!(consumed.consumed_at, Some(NOW + 1));
        assert!(!consumed.revoked);
        assert!(s.find(&next.hash).await.expect("find").is_some());
        assert!(
            s.find(&other.hash)
                .await
                .expect("find")
                .expect("found")
                .revoked
        );
        assert_eq!(
            s.rotate(&refresh.hash, TokenKind::Refresh, "app", NOW + 3, &[])
                .await
                .expect("rotate"),
            Rotation::Replayed(FamilyId([1; 16]))
        );
        drop(s);

        let s = open(&dir);
        assert!(
            s.find(&access.hash)
                .await
                .expect("find")
                .expect("found")
                .revoked
        );
    }

    #[tokio::test]
    async fn server_keys_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = open(&dir).server_keys().await.expect("keys");
        let again = open(&dir).server_keys().await.expect("keys");
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].id, 1);
        assert_eq!(again.len(), 1);
        assert_eq!(first[0].bytes(), again[0].bytes());
    }

    #[tokio::test]
    async fn two_stores_on_one_file_share_keys_and_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Arc::new(open(&dir));
        let b = Arc::new(open(&dir));
        let (ka, kb) = tokio::join!(a.server_keys(), b.server_keys());
        let (ka, kb) = (ka.expect("keys"), kb.expect("keys"));
        assert_eq!(ka.len(), 1);
        assert_eq!(ka[0].bytes(), kb[0].bytes());

        let refresh = token("refresh", TokenKind::Refresh, 1);
        a.issue(Some(&family(1, "app")), std::slice::from_ref(&refresh))
            .await
            .expect("issue");
        let mut tasks = Vec::new();
        for i in 0..10 {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            let new = token(&format!("new{i}"), TokenKind::Refresh, 1);
            tasks.push(tokio::spawn(async move {
                s.rotate(&refresh.hash, TokenKind::Refresh, "app", NOW + 1, &[new])
                    .await
            }));
        }
        // One winner; the first loser is a replay and revokes the family; every later loser
        // finds the family revoked.
        let (mut rotated, mut replayed, mut dead) = (0, 0, 0);
        for t in tasks {
            match t.await.expect("join").expect("rotate") {
                Rotation::Rotated(_) => rotated += 1,
                Rotation::Replayed(f) => {
                    assert_eq!(f, FamilyId([1; 16]));
                    replayed += 1;
                }
                Rotation::Dead => dead += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((rotated, replayed, dead), (1, 1, 8));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_stores_on_one_file_redeem_an_approval_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Arc::new(open(&dir));
        let b = Arc::new(open(&dir));
        let grant = NewDeviceGrant {
            device_hash: TokenHash::of("shared-device"),
            user_code: "BCDFGHJK".into(),
            client_id: "tv".into(),
            scopes: Scopes::parse("read").expect("scopes"),
            interval: 5,
            created_at: NOW,
            expires_at: NOW + 600,
        };
        a.put_device_grant(&grant).await.expect("put");
        let clash = NewDeviceGrant {
            device_hash: TokenHash::of("other-device"),
            ..grant.clone()
        };
        assert!(matches!(
            b.put_device_grant(&clash).await,
            Err(StoreError::Conflict)
        ));
        assert!(b
            .decide_device_grant("BCDFGHJK", "alice", true, NOW + 1)
            .await
            .expect("decide"));
        assert!(!a
            .decide_device_grant("BCDFGHJK", "mallory", false, NOW + 1)
            .await
            .expect("decide"));
        let mut tasks = Vec::new();
        for i in 0..10 {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            let hash = grant.device_hash;
            tasks.push(tokio::spawn(async move {
                s.poll_device_grant(&hash, "tv", NOW * 1000 + 2000, 5000, &test_tokens())
                    .await
            }));
        }
        let (mut approved, mut redeemed) = (0, 0);
        for t in tasks {
            match t.await.expect("join").expect("poll") {
                DevicePoll::Approved(g) => {
                    assert_eq!(g.user.as_deref(), Some("alice"));
                    approved += 1;
                }
                DevicePoll::Redeemed => redeemed += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((approved, redeemed), (1, 9));
    }

    #[tokio::test]
    async fn uses_wal_and_records_the_schema_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let conn = s.inner.writer();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(mode, "wal");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(version, MIGRATIONS.len() as i64);
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(fk, 1);
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(sync, 2, "FULL");
    }

    #[tokio::test]
    async fn normal_synchronous_is_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = SqliteStore::open(dir.path().join("edge.db"), Synchronous::Normal).expect("open");
        let sync: i64 = s
            .inner
            .writer()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(sync, 1, "NORMAL");
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        s.inner
            .writer()
            .pragma_update(None, "user_version", 99)
            .expect("pragma");
        drop(s);
        let e = SqliteStore::open(dir.path().join("edge.db"), Synchronous::Full)
            .expect_err("newer schema");
        assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
    }

    #[tokio::test]
    async fn in_memory_paths_are_refused() {
        assert!(SqliteStore::open(":memory:", Synchronous::Full).is_err());
        assert!(SqliteStore::open("", Synchronous::Full).is_err());
    }

    #[tokio::test]
    async fn corrupted_rows_are_errors_not_panics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let a = token("a", TokenKind::Access, 1);
        let b = token("b", TokenKind::Access, 1);
        let c = token("c", TokenKind::Access, 1);
        s.issue(Some(&family(1, "app")), &[a.clone(), b.clone(), c.clone()])
            .await
            .expect("issue");
        {
            let conn = s.inner.writer();
            conn.execute(
                "UPDATE tokens SET kind = 'bogus' WHERE hash = ?1",
                [&a.hash.0[..]],
            )
            .expect("update");
            conn.execute(
                "UPDATE tokens SET scopes = 'a\"b' WHERE hash = ?1",
                [&b.hash.0[..]],
            )
            .expect("update");
            conn.execute(
                "UPDATE tokens SET issued_at = 'yesterday' WHERE hash = ?1",
                [&c.hash.0[..]],
            )
            .expect("update");
            conn.execute(
                "INSERT INTO clients (id, settings, created_at) VALUES ('x', '{', 0)",
                [],
            )
            .expect("insert");
            conn.execute(
                "INSERT INTO server_keys (id, key, created_at) VALUES (300, x'00', 0)",
                [],
            )
            .expect("insert");
        }
        for h in [a.hash, b.hash, c.hash] {
            let e = s.find(&h).await.expect_err("corrupted");
            assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
        }
        assert!(matches!(s.client("x").await, Err(StoreError::Backend(_))));
        assert!(matches!(
            s.list_clients().await,
            Err(StoreError::Backend(_))
        ));
        assert!(matches!(s.server_keys().await, Err(StoreError::Backend(_))));
    }

    #[tokio::test]
    async fn corrupted_device_grant_rows_are_errors_not_panics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let grant = |tag: &str, user_code: &str| NewDeviceGrant {
            device_hash: TokenHash::of(tag),
            user_code: user_code.into(),
            client_id: "tv".into(),
            scopes: Scopes::parse("read").expect("scopes"),
            interval: 5,
            created_at: NOW,
            expires_at: NOW + 600,
        };
        let corruptions = [
            "UPDATE device_grants SET status = 'maybe' WHERE user_code = ?1",
            "UPDATE device_grants SET interval = -1 WHERE user_code = ?1",
            "UPDATE device_grants SET first_interval = 5000000000 WHERE user_code = ?1",
            "UPDATE device_grants SET scopes = 'a\"b' WHERE user_code = ?1",
            "UPDATE device_grants SET device_hash = x'00' WHERE user_code = ?1",
        ];
        for (i, sql) in corruptions.iter().enumerate() {
            let code = format!("CODE{i}");
            let g = grant(&format!("device-{i}"), &code);
            s.put_device_grant(&g).await.expect("put");
            s.inner
                .writer()
                .execute(sql, [&code])
                .expect("corrupt the row");
            let e = s
                .device_grant_by_user_code(&code, NOW)
                .await
                .expect_err("corrupted");
            assert!(matches!(e, StoreError::Backend(_)), "{sql}: {e:?}");
            if !sql.contains("device_hash") {
                let e = s
                    .poll_device_grant(&g.device_hash, "tv", NOW * 1000, 0, &test_tokens())
                    .await
                    .expect_err("corrupted");
                assert!(matches!(e, StoreError::Backend(_)), "{sql}: {e:?}");
            }
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_file_and_its_wal_are_private_and_an_open_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let path = data.join("edge.db");
        let s = SqliteStore::open(&path, Synchronous::Normal).expect("open");
        let keys = s.server_keys().await.expect("a key is made and written");
        assert!(!keys.is_empty());
        assert_eq!(mode(&data), 0o700);
        for f in ["edge.db", "edge.db-wal", "edge.db-shm"] {
            assert_eq!(mode(&data.join(f)), 0o600, "{f}");
        }
        drop(s);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let Err(StoreError::Backend(e)) = SqliteStore::open(&path, Synchronous::Normal) else {
            panic!("a readable store file must be refused");
        };
        assert!(
            e.contains(&path.display().to_string()) && e.contains("0644"),
            "{e}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

        let wal = data.join("edge.db-wal");
        // The last connection to close removes the -wal; an empty one is a valid "no WAL".
        crate::files::create_private_file(&wal).unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o640)).unwrap();
        let Err(StoreError::Backend(e)) = SqliteStore::open(&path, Synchronous::Normal) else {
            panic!("a readable -wal must be refused");
        };
        assert!(e.contains("edge.db-wal"), "{e}");
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o600)).unwrap();
        SqliteStore::open(&path, Synchronous::Normal).expect("private again");
    }

    #[tokio::test]
    async fn a_version_1_file_is_upgraded_by_the_later_migrations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("edge.db");
        crate::files::create_private_file(&path).expect("create");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(MIGRATIONS[0]).expect("v1");
            conn.pragma_update(None, "user_version", 1).expect("pragma");
            conn.execute(
                "INSERT INTO families (id, client_id, user_id, grant_type, created_at)
                 VALUES (?1, 'app', 'alice', 'password', ?2)",
                params![&[1u8; 16][..], NOW],
            )
            .expect("family");
            let t = token("kept", TokenKind::Refresh, 1);
            conn.execute(
                INSERT_TOKEN,
                params![
                    &t.hash.0[..],
                    t.kind.as_str(),
                    &t.family.0[..],
                    t.scopes.to_string(),
                    t.issued_at,
                    t.expires_at
                ],
            )
            .expect("token");
        }
        let s = open(&dir);
        let version: i64 = s
            .inner
            .writer()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(version, MIGRATIONS.len() as i64);
        let t = token("kept", TokenKind::Refresh, 1);
        let rec = s.find(&t.hash).await.expect("find").expect("kept");
        assert_eq!(
            (rec.kind, rec.client_id.as_str()),
            (TokenKind::Refresh, "app")
        );
        // Deleting a token of the old schema cascades into the new code_bindings table.
        assert_eq!(s.purge_expired(NOW + 7200, 10).await.expect("purge"), 1);
    }

    #[tokio::test]
    async fn unstorable_scopes_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let mut t = token("t", TokenKind::Access, 1);
        t.scopes = Scopes::from_iter(["caf\u{e9}"]);
        let e = s
            .issue(Some(&family(1, "app")), std::slice::from_ref(&t))
            .await
            .expect_err("refused");
        assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
        assert_eq!(s.find(&t.hash).await.expect("find"), None);
    }

    #[test]
    fn busy_maps_to_unavailable_and_unique_to_conflict() {
        let busy = rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_BUSY), None);
        assert!(matches!(sql_error("x", &busy), StoreError::Unavailable(_)));
        let pk = rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_CONSTRAINT_PRIMARYKEY),
            None,
        );
        assert!(matches!(sql_error("x", &pk), StoreError::Conflict));
        let fk = rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
            None,
        );
        assert!(matches!(sql_error("x", &fk), StoreError::Backend(_)));
    }
}
