//! The configuration: TOML, read once, checked once.
//!
//! Every table denies unknown keys, and [`Config::from_toml`] checks what serde cannot, so a
//! mistake is reported at start-up with the key that holds it. The gateway keeps its own
//! settings under `[gateway]`, which this crate passes through untouched.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scope::Scopes;
use crate::secret::Secret;

/// A configuration error: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config: {key}: {reason}")]
pub struct ConfigError {
    /// The dotted path of the offending key, e.g. `clients[1].redirect_uris[0]`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// An error at `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The whole configuration. `Debug` prints no secret: those of this crate's tables are
/// [`Secret`]s or redacted, and the gateway's `admin.token` is redacted too.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The issuer identifier (RFC 8414), e.g. `https://auth.example.com`. When unset, the
    /// metadata document derives it from the request's `Host`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Token lifetimes and MAC keys.
    #[serde(default)]
    pub tokens: TokensConfig,
    /// The token-status cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Where tokens and run-time clients are kept.
    #[serde(default)]
    pub store: StoreConfig,
    /// The endpoint profiles to mount. Default: `rfc` at `/oauth2`.
    #[serde(default = "default_profiles")]
    pub profiles: Vec<ProfileConfig>,
    /// Clients declared in the file.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Users of the built-in user table (password grant).
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Passthrough routes and what they require.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Passthrough defaults and identity headers.
    #[serde(default)]
    pub passthrough: PassthroughConfig,
    /// Request limits and client-authentication throttling.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The authorization-code flow: sign-in, consent, codes, the session cookie.
    #[serde(default)]
    pub authorization: AuthorizationConfig,
    /// The device flow (RFC 8628).
    #[serde(default)]
    pub device: DeviceConfig,
    /// Maintenance mode: every endpoint and route answers 503 with `Retry-After`.
    #[serde(default)]
    pub maintenance: MaintenanceConfig,
    /// Deleting expired tokens, codes and device grants.
    #[serde(default)]
    pub housekeeping: HousekeepingConfig,
    /// The gateway's own settings; read by the `oauth-edge` binary, ignored here.
    #[serde(default)]
    pub gateway: Option<toml::Table>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so that a new field cannot be left out of the output unnoticed.
        let Config {
            issuer,
            tokens,
            cache,
            store,
            profiles,
            clients,
            users,
            routes,
            passthrough,
            limits,
            authorization,
            device,
            maintenance,
            housekeeping,
            gateway,
        } = self;
        // The gateway's table is printed as given, less the admin token ([`Config::secret_keys`]).
        let gateway = gateway.as_ref().map(|g| {
            let mut g = g.clone();
            let token = g
                .get_mut("admin")
                .and_then(|a| a.as_table_mut())
                .and_then(|a| a.get_mut("token"));
            if let Some(t) = token {
                *t = toml::Value::String("[redacted]".into());
            }
            g
        });
        f.debug_struct("Config")
            .field("issuer", issuer)
            .field("tokens", tokens)
            .field("cache", cache)
            .field("store", store)
            .field("profiles", profiles)
            .field("clients", clients)
            .field("users", users)
            .field("routes", routes)
            .field("passthrough", passthrough)
            .field("limits", limits)
            .field("authorization", authorization)
            .field("device", device)
            .field("maintenance", maintenance)
            .field("housekeeping", housekeeping)
            .field("gateway", &gateway)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            issuer: None,
            tokens: TokensConfig::default(),
            cache: CacheConfig::default(),
            store: StoreConfig::default(),
            profiles: default_profiles(),
            clients: Vec::new(),
            users: Vec::new(),
            routes: Vec::new(),
            passthrough: PassthroughConfig::default(),
            limits: LimitsConfig::default(),
            authorization: AuthorizationConfig::default(),
            device: DeviceConfig::default(),
            maintenance: MaintenanceConfig::default(),
            housekeeping: HousekeepingConfig::default(),
            gateway: None,
        }
    }
}

fn default_profiles() -> Vec<ProfileConfig> {
    vec![ProfileConfig {
        kind: ProfileKind::Rfc,
        base: "/oauth2".into(),
    }]
}

/// Token lifetimes and MAC keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Access token lifetime. Default 1 h.
    #[serde(with = "humantime_serde")]
    pub access_ttl: Duration,
    /// Refresh token lifetime, renewed at every rotation. Default 30 days.
    #[serde(with = "humantime_serde")]
    pub refresh_ttl: Duration,
    /// MAC keys. When empty, the store generates and keeps one (shared by every instance on
    /// that store).
    pub keys: Vec<KeyConfig>,
    /// The id of the key that signs new tokens. Default: the highest id.
    pub signing_key: Option<u8>,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            keys: Vec::new(),
            signing_key: None,
        }
    }
}

/// A client's quota: `requests` per window of `per`, the window starting at the first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests allowed per window.
    pub requests: u64,
    /// The window, e.g. `"1h"` or `"1d"`.
    #[serde(with = "humantime_serde")]
    pub per: Duration,
}

/// The authorization-code flow (RFC 6749 4.1, RFC 7636).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizationConfig {
    /// How long a code may wait to be redeemed. Default 60 s.
    #[serde(with = "humantime_serde")]
    pub code_ttl: Duration,
    /// How long a sign-in lasts (the session cookie). Default 8 h.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// How long a user may take over the sign-in and consent pages. Default 10 min.
    #[serde(with = "humantime_serde")]
    pub request_ttl: Duration,
    /// Hand sign-in off to an existing login app at this URL instead of the built-in page:
    /// the edge redirects there with `login_challenge`, and the app accepts or rejects the
    /// challenge through the admin API.
    pub login_url: Option<String>,
    /// Whether cookies are `Secure`. Default: when the issuer is `https://`, or the request
    /// came over TLS.
    pub secure_cookies: Option<bool>,
    /// Failed sign-ins allowed per source address per minute before 429. Default 10.
    pub max_failed_sign_ins_per_minute: u32,
}

impl Default for AuthorizationConfig {
    fn default() -> Self {
        AuthorizationConfig {
            code_ttl: Duration::from_secs(60),
            session_ttl: Duration::from_secs(8 * 3600),
            request_ttl: Duration::from_secs(600),
            login_url: None,
            secure_cookies: None,
            max_failed_sign_ins_per_minute: 10,
        }
    }
}

/// The device flow (RFC 8628).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceConfig {
    /// How long the device and user codes live. Default 10 min.
    #[serde(with = "humantime_serde")]
    pub code_ttl: Duration,
    /// The polling interval handed to devices. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// The verification page's absolute URL, as shown to users. Default: the issuer (or
    /// the request's `Host`) and the profile's `/device` path.
    pub verification_uri: Option<String>,
    /// Wrong user codes allowed per source address per minute before 429. Default 10.
    pub max_wrong_codes_per_minute: u32,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            code_ttl: Duration::from_secs(600),
            interval: Duration::from_secs(5),
            verification_uri: None,
            max_wrong_codes_per_minute: 10,
        }
    }
}

/// Maintenance mode (NPR One documents it: 503 with `Retry-After`). Also switched at run time
/// with [`Edge::set_maintenance`](crate::engine::Core::set_maintenance) (the gateway's admin API).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceConfig {
    /// Start in maintenance. Default false.
    pub enabled: bool,
    /// The `Retry-After` given. Default 5 min.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            enabled: false,
            retry_after: Duration::from_secs(300),
        }
    }
}

/// Deleting what has expired, so the store does not grow without end: every `interval`, up
/// to `batches` batches of `batch` rows, each its own short transaction.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HousekeepingConfig {
    /// How often. `"0s"` turns it off (another instance, or a cron job, does it). Default 1 min.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Rows per batch. Default 1000.
    pub batch: u32,
    /// Most batches per round. Default 20.
    pub batches: u32,
}

impl Default for HousekeepingConfig {
    fn default() -> Self {
        HousekeepingConfig {
            interval: Duration::from_secs(60),
            batch: 1000,
            batches: 20,
        }
    }
}

/// One MAC key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The key id (1–255) written into tokens.
    pub id: u8,
    /// 32 bytes, base64 (standard or URL-safe alphabet).
    pub secret: Secret,
}

/// The token-status cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Most entries held. Default 100 000.
    pub capacity: u64,
    /// How long a token's status is trusted without asking the store; also the worst-case
    /// delay before a revocation made elsewhere is seen when no notification arrives.
    /// Default 30 s.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// How long a well-formed but unknown token is remembered as unknown. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity: 100_000,
            ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
        }
    }
}

/// Which store to use.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    /// In memory; lost at exit.
    Memory,
    /// An SQLite file in WAL mode: the embedded default.
    Sqlite {
        /// The database file. Default `oauth-edge.db`.
        #[serde(default = "default_sqlite_path")]
        path: PathBuf,
        /// `full` (default): an acknowledged write survives power loss. `normal`: it survives
        /// a crash of the process but not of the machine.
        #[serde(default)]
        synchronous: SyncMode,
    },
    /// PostgreSQL: for several gateway instances sharing one database. Revocations reach
    /// every instance through `LISTEN/NOTIFY`.
    Postgres(PostgresConfig),
}

/// `[store] kind = "postgres"`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// A libpq connection string or URL, e.g. `postgres://oauth_edge@db.internal/oauth_edge`.
    /// It may hold a password: it is never logged or printed.
    pub url: Secret,
    /// The schema the tables live in. Default `public`.
    #[serde(default = "default_pg_schema")]
    pub schema: String,
    /// Most connections in the pool (the listener takes one more). Default 16.
    #[serde(default = "default_pg_pool")]
    pub pool_size: u32,
    /// How long to wait for a connection to open. Default 5 s.
    #[serde(default = "default_pg_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long a request waits for a pooled connection, and the longest a statement may
    /// run (`statement_timeout`). Default 2 s.
    #[serde(default = "default_pg_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &"[redacted]")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn default_pg_schema() -> String {
    "public".into()
}
fn default_pg_pool() -> u32 {
    16
}
fn default_pg_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_pg_timeout() -> Duration {
    Duration::from_secs(2)
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig::Sqlite {
            path: default_sqlite_path(),
            synchronous: SyncMode::default(),
        }
    }
}

fn default_sqlite_path() -> PathBuf {
    "oauth-edge.db".into()
}

/// SQLite's `synchronous` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Every commit is fsynced.
    #[default]
    Full,
    /// Commits survive a process crash, not a power loss.
    Normal,
}

/// The route profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileKind {
    /// RFC 6749/7009/7662/8414 endpoints.
    Rfc,
    /// NPR One's authorization service (`/authorization/v2`).
    Npr,
    /// IBM API Connect's revoke endpoint (`/api`).
    Ibm,
    /// KorAP Kustvakt's revoke endpoint (`{root}/oauth2`).
    Kustvakt,
}

/// A mounted profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Which profile.
    pub kind: ProfileKind,
    /// Where its endpoints live, e.g. `/oauth2`.
    pub base: String,
}

/// How a client may authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic (RFC 6749 2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` form fields.
    ClientSecretPost,
    /// `X-IBM-Client-Id`/`X-IBM-Client-Secret` headers, or `client_id`/`client_secret` query
    /// parameters where the endpoint allows them (IBM API Connect).
    ClientSecretHeader,
    /// `Authorization: Bearer` with a `client_credentials` access token of the client.
    ClientCredentialsBearer,
    /// `client_id` alone: public clients.
    None,
}

impl AuthMethod {
    /// The name used in config and metadata.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::ClientSecretHeader => "client_secret_header",
            AuthMethod::ClientCredentialsBearer => "client_credentials_bearer",
            AuthMethod::None => "none",
        }
    }
}

/// A client declared in the config file (also the shape run-time clients are stored in).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The client id.
    pub id: String,
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The secret in plain text, for local use only (a warning is logged).
    #[serde(default, skip_serializing)]
    pub secret: Option<Secret>,
    /// The secret as a hash: `blake3$…` (generated secrets) or an argon2id PHC string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    /// A public client has no secret and authenticates with its `client_id` alone.
    #[serde(default)]
    pub public: bool,
    /// Grant types it may use, including extension grants such as `temporary_user`.
    #[serde(default = "default_grants")]
    pub grants: Vec<String>,
    /// The scopes it may ask for.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The scopes it gets when it asks for none. Default: all of `scopes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_scopes: Option<Vec<String>>,
    /// Authentication methods it may use. Default: every secret-based method for
    /// confidential clients, `none` for public ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_methods: Option<Vec<AuthMethod>>,
    /// Registered redirect URIs, matched exactly.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// May introspect tokens of other clients (a resource server). Every client may
    /// introspect its own.
    #[serde(default)]
    pub introspect: bool,
    /// Overrides `tokens.access_ttl` for this client.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_ttl: Option<Duration>,
    /// A quota on the client's passthrough requests (NPR One rate-limits untrusted clients):
    /// over it, 429 with `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` and
    /// `Retry-After`; under it, the same headers on every answer. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitConfig>,
    /// Requires PKCE (S256) in authorization requests. Public clients always do.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_pkce: bool,
    /// Skips the consent page (for first-party clients): a signed-in user is sent straight
    /// back with a code.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_consent: bool,
}

impl std::fmt::Debug for ClientConfig {
    // A hash of a low-entropy secret invites offline guessing: print that there is one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("secret", &self.secret)
            .field(
                "secret_hash",
                &self.secret_hash.as_ref().map(|_| "[redacted]"),
            )
            .field("public", &self.public)
            .field("grants", &self.grants)
            .field("scopes", &self.scopes)
            .field("default_scopes", &self.default_scopes)
            .field("auth_methods", &self.auth_methods)
            .field("redirect_uris", &self.redirect_uris)
            .field("introspect", &self.introspect)
            .field("access_ttl", &self.access_ttl)
            .field("rate_limit", &self.rate_limit)
            .field("require_pkce", &self.require_pkce)
            .field("skip_consent", &self.skip_consent)
            .finish()
    }
}

impl std::fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("username", &self.username)
            .field("password", &self.password)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[redacted]"),
            )
            .field("scopes", &self.scopes)
            .finish()
    }
}

fn default_grants() -> Vec<String> {
    vec!["client_credentials".into()]
}

/// A user of the built-in user table.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The login name, also the user id handed to upstreams.
    pub username: String,
    /// The password in plain text, for local use only (a warning is logged).
    #[serde(default)]
    pub password: Option<Secret>,
    /// The password as an argon2id PHC string.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Restricts the scopes tokens for this user may carry.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// What a passthrough route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Require {
    /// A valid bearer access token.
    Bearer,
    /// Client credentials (Basic, `X-IBM-*` headers or query parameters).
    Client,
    /// Either of the two.
    Either,
    /// Nothing: the route is public. Identity headers are still stripped.
    None,
}

/// A passthrough route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A path prefix, matched on segment boundaries (`/api` matches `/api` and `/api/x`, not
    /// `/apix`).
    #[serde(default = "default_route_path")]
    pub path: String,
    /// Matches only this `Host` (port ignored).
    #[serde(default)]
    pub host: Option<String>,
    /// What the route requires.
    pub require: Require,
    /// Scopes the token (or client) must hold, all of them.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Forward the bearer token to the upstream. Default: removed.
    #[serde(default)]
    pub forward_bearer: bool,
    /// The gateway's upstream for this route.
    #[serde(default)]
    pub upstream: Option<String>,
}

fn default_route_path() -> String {
    "/".into()
}

/// Passthrough defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassthroughConfig {
    /// What a request that matches no route requires. Default `bearer`.
    pub default_require: Require,
    /// The identity headers set for the upstream.
    pub identity_headers: IdentityHeadersConfig,
}

impl Default for PassthroughConfig {
    fn default() -> Self {
        PassthroughConfig {
            default_require: Require::Bearer,
            identity_headers: IdentityHeadersConfig::default(),
        }
    }
}

/// Names of the identity headers. Incoming copies of each (in any case, and with `_` for
/// `-`) are removed before the edge sets its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityHeadersConfig {
    /// The client id. Default `x-oauth-client-id`.
    pub client_id: String,
    /// The user, when there is one. Default `x-oauth-user`.
    pub user: String,
    /// The granted scopes, space-separated. Default `x-oauth-scope`.
    pub scope: String,
}

impl Default for IdentityHeadersConfig {
    fn default() -> Self {
        IdentityHeadersConfig {
            client_id: "x-oauth-client-id".into(),
            user: "x-oauth-user".into(),
            scope: "x-oauth-scope".into(),
        }
    }
}

/// Request limits and throttling.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest endpoint request body, in bytes. Default 16 KiB.
    pub max_body_bytes: usize,
    /// Failed client authentications allowed per client id and source address within
    /// `auth_failure_window`; past it, 429. Default 10.
    pub auth_failures: u32,
    /// The window for `auth_failures`. Default 60 s.
    #[serde(with = "humantime_serde")]
    pub auth_failure_window: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 16 * 1024,
            auth_failures: 10,
            auth_failure_window: Duration::from_secs(60),
        }
    }
}

impl Config {
    /// Parses and checks a TOML document.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        // A TOML syntax error has no key path yet: its line says where.
        let line = |span: Option<std::ops::Range<usize>>| {
            span.map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
        };
        let document = toml::Deserializer::parse(text).map_err(|e| {
            let at = line(e.span()).map_or(String::new(), |n| format!(" (line {n})"));
            ConfigError::new(format!("(document){at}"), e.message().to_string())
        })?;
        let config: Config = serde_path_to_error::deserialize(document).map_err(|e| {
            let path = e.path().to_string();
            let at = line(e.inner().span()).map_or(String::new(), |n| format!(" (line {n})"));
            let key = if path == "." {
                "(document)".into()
            } else {
                path
            };
            ConfigError::new(format!("{key}{at}"), e.inner().message().to_string())
        })?;
        config.validate()?;
        config.warn_plain_text();
        Ok(config)
    }

    /// Logs a warning for every secret or password given in plain text.
    pub fn warn_plain_text(&self) {
        for (i, c) in self.clients.iter().enumerate() {
            if c.secret.is_some() {
                tracing::warn!(
                    key = %format!("clients[{i}].secret"),
                    "client secret given in plain text; use secret_hash outside local use"
                );
            }
        }
        for (i, u) in self.users.iter().enumerate() {
            if u.password.is_some() {
                tracing::warn!(
                    key = %format!("users[{i}].password"),
                    "user password given in plain text; use password_hash outside local use"
                );
            }
        }
    }

    /// Reads, parses and checks a TOML file. A file that holds secrets ([`Config::secret_keys`])
    /// must be its owner's alone (mode `0600` or stricter): one that group or others may open
    /// is refused, the error naming the file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path.display().to_string(), e.to_string()))?;
        let config = Self::from_toml(&text)?;
        let held = config.secret_keys();
        if !held.is_empty() {
            crate::files::check_private(path, &format!("secrets ({})", held.join(", ")))
                .map_err(|e| ConfigError::new(path.display().to_string(), e))?;
        }
        Ok(config)
    }

    /// The keys of the secrets this config holds in itself: MAC keys, plain-text client
    /// secrets, user passwords and their hashes (user passwords are guessable offline), a
    /// PostgreSQL URL with a password, the gateway's admin token.
    pub fn secret_keys(&self) -> Vec<String> {
        let mut held = Vec::new();
        if !self.tokens.keys.is_empty() {
            held.push("tokens.keys".to_string());
        }
        if let StoreConfig::Postgres(pg) = &self.store {
            let url = pg.url.expose();
            let userinfo = url
                .split_once("://")
                .and_then(|(_, rest)| rest.split(['/', '?']).next())
                .and_then(|authority| authority.rsplit_once('@'))
                .map(|(userinfo, _)| userinfo);
            if url.contains("password") || userinfo.is_some_and(|u| u.contains(':')) {
                held.push("store.url".to_string());
            }
        }
        if let Some(i) = self.clients.iter().position(|c| c.secret.is_some()) {
            held.push(format!("clients[{i}].secret"));
        }
        if let Some(i) = self.users.iter().position(|u| u.password.is_some()) {
            held.push(format!("users[{i}].password"));
        }
        if let Some(i) = self.users.iter().position(|u| u.password_hash.is_some()) {
            held.push(format!("users[{i}].password_hash"));
        }
        let admin_token = self
            .gateway
            .as_ref()
            .and_then(|g| g.get("admin"))
            .and_then(|a| a.get("token"));
        if admin_token.is_some() {
            held.push("gateway.admin.token".to_string());
        }
        held
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_urls_and_lifetimes()?;
        self.validate_tokens()?;
        self.validate_cache()?;
        self.validate_profiles()?;
        self.validate_clients()?;
        self.validate_users()?;
        self.validate_routes()?;
        self.validate_passthrough()?;
        self.validate_limits()
    }

    /// `issuer`, the sign-in and device URLs, and the flows' lifetimes.
    fn validate_urls_and_lifetimes(&self) -> Result<(), ConfigError> {
        if let Some(iss) = &self.issuer {
            if !(iss.starts_with("https://") || iss.starts_with("http://")) || iss.contains('?') {
                return Err(ConfigError::new(
                    "issuer",
                    "must be an http(s) URL without a query",
                ));
            }
        }
        for (key, url) in [
            ("authorization.login_url", &self.authorization.login_url),
            ("device.verification_uri", &self.device.verification_uri),
        ] {
            if let Some(u) = url {
                if !(u.starts_with("https://") || u.starts_with("http://")) || u.contains('#') {
                    return Err(ConfigError::new(
                        key,
                        "must be an http(s) URL without a fragment",
                    ));
                }
            }
        }
        for (key, d) in [
            ("authorization.code_ttl", self.authorization.code_ttl),
            ("authorization.session_ttl", self.authorization.session_ttl),
            ("authorization.request_ttl", self.authorization.request_ttl),
            ("device.code_ttl", self.device.code_ttl),
            ("device.interval", self.device.interval),
        ] {
            if d.as_secs() == 0 {
                return Err(ConfigError::new(key, "must be at least 1s"));
            }
        }
        Ok(())
    }

    /// `[tokens]`: the access lifetime, the MAC keys and the signing key.
    fn validate_tokens(&self) -> Result<(), ConfigError> {
        if self.tokens.access_ttl.is_zero() {
            return Err(ConfigError::new("tokens.access_ttl", "must be more than 0"));
        }
        let mut key_ids = std::collections::HashSet::new();
        for (i, k) in self.tokens.keys.iter().enumerate() {
            if k.id == 0 {
                return Err(ConfigError::new(
                    format!("tokens.keys[{i}].id"),
                    "must be 1-255",
                ));
            }
            if !key_ids.insert(k.id) {
                return Err(ConfigError::new(format!("tokens.keys[{i}].id"), "repeated"));
            }
            if decode_key(k.secret.expose()).is_none() {
                return Err(ConfigError::new(
                    format!("tokens.keys[{i}].secret"),
                    "must be 32 bytes in base64",
                ));
            }
        }
        if let Some(s) = self.tokens.signing_key {
            if !key_ids.contains(&s) {
                return Err(ConfigError::new(
                    "tokens.signing_key",
                    "names no key in tokens.keys",
                ));
            }
        }
        Ok(())
    }

    /// `[cache]`.
    fn validate_cache(&self) -> Result<(), ConfigError> {
        if self.cache.capacity == 0 {
            return Err(ConfigError::new("cache.capacity", "must be more than 0"));
        }
        Ok(())
    }

    /// `[[profiles]]`: canonical, distinct mount points.
    fn validate_profiles(&self) -> Result<(), ConfigError> {
        let mut bases = std::collections::HashSet::new();
        for (i, p) in self.profiles.iter().enumerate() {
            canonical_prefix(&p.base)
                .map_err(|e| ConfigError::new(format!("profiles[{i}].base"), e))?;
            if !p.base.starts_with('/') || (p.base.len() > 1 && p.base.ends_with('/')) {
                return Err(ConfigError::new(
                    format!("profiles[{i}].base"),
                    "must start with / and not end with /",
                ));
            }
            if !bases.insert(p.base.as_str()) {
                return Err(ConfigError::new(
                    format!("profiles[{i}].base"),
                    "another profile is mounted there",
                ));
            }
        }
        Ok(())
    }

    /// `[[clients]]`: distinct ids, each client by the registry's rules.
    fn validate_clients(&self) -> Result<(), ConfigError> {
        let mut ids = std::collections::HashSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            let key = |k: &str| format!("clients[{i}].{k}");
            if !ids.insert(c.id.as_str()) {
                return Err(ConfigError::new(key("id"), "repeated client id"));
            }
            crate::clients::validate_client(c).map_err(|(k, r)| ConfigError::new(key(k), r))?;
        }
        Ok(())
    }

    /// `[[users]]`: distinct names, one password form each, valid scopes.
    fn validate_users(&self) -> Result<(), ConfigError> {
        let mut users = std::collections::HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            let key = |k: &str| format!("users[{i}].{k}");
            if u.username.is_empty() {
                return Err(ConfigError::new(key("username"), "must not be empty"));
            }
            if !users.insert(u.username.as_str()) {
                return Err(ConfigError::new(key("username"), "repeated username"));
            }
            match (&u.password, &u.password_hash) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        key("password"),
                        "give password or password_hash, not both",
                    ))
                }
                (None, None) => {
                    return Err(ConfigError::new(
                        key("password_hash"),
                        "one of password or password_hash is required",
                    ))
                }
                (Some(_), None) => {}
                (None, Some(h)) => {
                    if argon2::PasswordHash::new(h).is_err() {
                        return Err(ConfigError::new(
                            key("password_hash"),
                            "not a PHC string (expected $argon2id$...)",
                        ));
                    }
                }
            }
            if let Some(s) = &u.scopes {
                check_scopes(s).map_err(|r| ConfigError::new(key("scopes"), r))?;
            }
        }
        Ok(())
    }

    /// `[[routes]]`: canonical paths and hosts, scopes only where something is required.
    fn validate_routes(&self) -> Result<(), ConfigError> {
        for (i, r) in self.routes.iter().enumerate() {
            let key = |k: &str| format!("routes[{i}].{k}");
            if !r.path.starts_with('/') {
                return Err(ConfigError::new(key("path"), "must start with /"));
            }
            // Requests are matched in canonical form, so a prefix in any other form would
            // never match, or match what it does not say.
            canonical_prefix(&r.path).map_err(|e| ConfigError::new(key("path"), e))?;
            if let Some(h) = &r.host {
                let c = crate::target::host(h)
                    .map_err(|e| ConfigError::new(key("host"), e.describe()))?;
                if matches!(crate::target::split_port(&c), Ok((_, Some(_)))) {
                    return Err(ConfigError::new(
                        key("host"),
                        "a route's host has no port (ports are ignored when matching)",
                    ));
                }
            }
            check_scopes(&r.scopes).map_err(|e| ConfigError::new(key("scopes"), e))?;
            if r.require == Require::None && !r.scopes.is_empty() {
                return Err(ConfigError::new(
                    key("scopes"),
                    "a route that requires nothing cannot require scopes",
                ));
            }
        }
        Ok(())
    }

    /// `[passthrough]`: the identity headers are header names.
    fn validate_passthrough(&self) -> Result<(), ConfigError> {
        let h = &self.passthrough.identity_headers;
        for (k, v) in [
            ("client_id", &h.client_id),
            ("user", &h.user),
            ("scope", &h.scope),
        ] {
            if http::HeaderName::from_bytes(v.as_bytes()).is_err() {
                return Err(ConfigError::new(
                    format!("passthrough.identity_headers.{k}"),
                    "not a valid header name",
                ));
            }
        }
        Ok(())
    }

    /// `[limits]`.
    fn validate_limits(&self) -> Result<(), ConfigError> {
        if self.limits.max_body_bytes == 0 {
            return Err(ConfigError::new(
                "limits.max_body_bytes",
                "must be more than 0",
            ));
        }
        Ok(())
    }
}

/// A route path or profile base must be written as requests are matched: in canonical
/// form ([`crate::target::path`]).
fn canonical_prefix(p: &str) -> Result<(), String> {
    match crate::target::path(p) {
        Ok(std::borrow::Cow::Borrowed(_)) => Ok(()),
        Ok(std::borrow::Cow::Owned(c)) => Err(format!("must be in canonical form: write {c:?}")),
        Err(e) => Err(e.describe().to_string()),
    }
}

pub(crate) fn check_scopes(scopes: &[String]) -> Result<Scopes, String> {
    for s in scopes {
        let one = Scopes::parse(s).map_err(|e| e.to_string())?;
        if one.iter().count() != 1 {
            return Err(format!("{s:?} is not a single scope token"));
        }
    }
    Ok(Scopes::from_iter(scopes))
}

/// Decodes a 32-byte key given in base64 (either alphabet, padded or not).
pub(crate) fn decode_key(s: &str) -> Option<[u8; 32]> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let s = s.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
        .and_then(|v| v.try_into().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_document_is_the_default() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.profiles.len(), 1);
        assert_eq!(c.limits.max_body_bytes, 16 * 1024);
        assert!(matches!(c.store, StoreConfig::Sqlite { .. }));
    }

    #[test]
    fn the_secrets_a_config_holds_are_named() {
        let held = |t: &str| Config::from_toml(t).unwrap().secret_keys();
        assert!(held("").is_empty());
        assert!(held(
            "[[clients]]\nid = \"a\"\npublic = true\ngrants = [\"authorization_code\"]\n"
        )
        .is_empty());
        assert_eq!(
            held("[[clients]]\nid = \"a\"\npublic = true\ngrants = [\"authorization_code\"]\n[[clients]]\nid = \"b\"\nsecret = \"s\"\n"),
            ["clients[1].secret"]
        );
        assert_eq!(
            held("[[users]]\nusername = \"u\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$ZmFrZWhhc2hmYWtlaGFzaGZha2VoYXNoZmFrZWhh\"\n"),
            ["users[0].password_hash"]
        );
        assert_eq!(
            held("[gateway.admin]\ntoken = \"t\"\n[[tokens.keys]]\nid = 1\nsecret = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n"),
            ["tokens.keys", "gateway.admin.token"]
        );
        let pg = |url: &str| held(&format!("[store]\nkind = \"postgres\"\nurl = \"{url}\"\n"));
        assert!(pg("postgres://edge@db/edge").is_empty());
        assert!(pg("host=/run/postgresql user=edge").is_empty());
        assert_eq!(pg("postgres://edge:pw@db/edge"), ["store.url"]);
        assert_eq!(pg("host=db user=edge password=pw"), ["store.url"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_config_with_secrets_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.toml");
        std::fs::write(&path, "[[clients]]\nid = \"a\"\nsecret = \"s\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Config::from_file(&path).unwrap_err();
        assert_eq!(e.key, path.display().to_string());
        assert!(
            e.reason.contains("0644") && e.reason.contains("clients[0].secret"),
            "{e}"
        );
        assert!(e.reason.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        Config::from_file(&path).expect("a private file is read");
        // Without secrets, the file may be read by others.
        std::fs::write(&path, "[[routes]]\npath = \"/api\"\nrequire = \"bearer\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Config::from_file(&path).expect("nothing secret in it");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::from_toml("[cache]\nttl = \"5s\"\ncapacityy = 3\n").unwrap_err();
        assert!(e.key.starts_with("cache.capacityy"), "{e}");
        assert!(e.reason.contains("unknown field"), "{e}");
        let e =
            Config::from_toml("[[clients]]\nid = \"a\"\n[[clients]]\nid = \"b\"\nsecrt = \"x\"\n")
                .unwrap_err();
        assert!(e.key.starts_with("clients[1].secrt"), "{e}");
    }

    /// Keys are named by the deserializer's own path, so values inside inline tables and
    /// arrays are named exactly, with the line they are on.
    #[test]
    fn nested_values_are_named_by_their_path_and_line() {
        let e = Config::from_toml(
            "issuer = \"https://a.example\"\n\nclients = [{ id = \"a\" }, { id = \"b\", scopes = [1] }]\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "clients[1].scopes[0] (line 3)");
        assert!(e.reason.contains("expected a string"), "{e}");
        let e = Config::from_toml("[tokens]\nkeys = [{ id = 1, secret = 5 }]\n").unwrap_err();
        assert_eq!(e.key, "tokens.keys[0].secret (line 2)");
        let e =
            Config::from_toml("[[routes]]\npath = \"/a\"\nrequire = \"sometimes\"\n").unwrap_err();
        assert_eq!(e.key, "routes[0].require (line 3)");
        assert!(e.reason.contains("expected one of `bearer`"), "{e}");
        // A syntax error has no key yet: its line says where.
        let e = Config::from_toml("[cache]\nttl = \"5s\"\n[limits\n").unwrap_err();
        assert_eq!(e.key, "(document) (line 3)");
    }

    #[test]
    fn route_paths_bases_and_hosts_must_be_canonical() {
        let route = |extra: &str| {
            Config::from_toml(&format!(
                "[[routes]]\n{extra}\nrequire = \"bearer\"\nupstream = \"u\"\n"
            ))
        };
        let e = route("path = \"/a/../b\"").unwrap_err();
        assert_eq!(e.key, "routes[0].path");
        assert!(e.reason.contains("write \"/b\""), "{e}");
        let e = route("path = \"/%61pi\"").unwrap_err();
        assert!(e.reason.contains("write \"/api\""), "{e}");
        let e = route("path = \"/a;b\"").unwrap_err();
        assert_eq!(e.key, "routes[0].path");
        let e = route("path = \"/api\"\nhost = \"api.example:8080\"").unwrap_err();
        assert_eq!(e.key, "routes[0].host");
        let e = route("path = \"/api\"\nhost = \"api..example\"").unwrap_err();
        assert_eq!(e.key, "routes[0].host");
        let e =
            Config::from_toml("[[profiles]]\nkind = \"rfc\"\nbase = \"/o//auth\"\n").unwrap_err();
        assert_eq!(e.key, "profiles[0].base");
        assert!(e.reason.contains("write \"/o/auth\""), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::from_toml("[tokens]\naccess_ttl = \"soon\"\n").unwrap_err();
        assert!(e.key.starts_with("tokens.access_ttl"), "{e}");
        let e =
            Config::from_toml("[[routes]]\npath = \"api\"\nrequire = \"bearer\"\n").unwrap_err();
        assert_eq!(e.key, "routes[0].path");
        let e = Config::from_toml(
            "[[clients]]\nid = \"a\"\nsecret = \"s\"\n[[clients]]\nid = \"a\"\nsecret = \"s\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "clients[1].id");
        let e = Config::from_toml("[[tokens.keys]]\nid = 1\nsecret = \"short\"\n").unwrap_err();
        assert_eq!(e.key, "tokens.keys[0].secret");
    }

    #[test]
    fn debug_output_holds_no_secret_or_hash() {
        let c = Config::from_toml(
            r#"
[tokens]
keys = [{ id = 1, secret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" }]
[[clients]]
id = "a"
secret = "plain-secret-value"
[[clients]]
id = "b"
secret_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$ZmFrZWhhc2hmYWtlaGFzaGZha2VoYXNoZmFrZWhh"
[[users]]
username = "u"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$ZmFrZWhhc2hmYWtlaGFzaGZha2VoYXNoZmFrZWhh"
"#,
        )
        .unwrap();
        let printed = format!("{c:?}");
        for secret in ["plain-secret-value", "ZmFrZWhhc2", "AAAAAAAAAA"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
    }

    #[test]
    fn debug_output_holds_no_gateway_admin_token() {
        // Found by the `config` fuzz target: `gateway` was printed as it came, admin token
        // and all, though `secret_keys` names that token a secret.
        let c = Config::from_toml(
            r#"
[gateway]
listen = "127.0.0.1:8080"
[gateway.admin]
token = "the-admin-token-value"
"#,
        )
        .unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("the-admin-token-value"), "{printed}");
        // The rest of the gateway's table is still shown, and the config is unchanged.
        assert!(printed.contains("127.0.0.1:8080"), "{printed}");
        let token = c.gateway.as_ref().unwrap()["admin"]["token"].as_str();
        assert_eq!(token, Some("the-admin-token-value"));
    }

    #[test]
    fn a_full_document_parses() {
        let c = Config::from_toml(
            r#"
issuer = "https://auth.example.com"
[tokens]
access_ttl = "15m"
refresh_ttl = "7d"
[cache]
ttl = "10s"
[store]
kind = "memory"
[[profiles]]
kind = "rfc"
base = "/oauth2"
[[clients]]
id = "svc"
secret = "s3cret"
grants = ["client_credentials", "password", "refresh_token"]
scopes = ["read", "write"]
auth_methods = ["client_secret_basic", "client_secret_header"]
[[users]]
username = "alice"
password = "wonderland"
[[routes]]
path = "/api"
require = "bearer"
scopes = ["read"]
[passthrough]
default_require = "none"
[gateway]
anything = "goes"
"#,
        )
        .unwrap();
        assert_eq!(c.tokens.access_ttl, Duration::from_secs(900));
        assert_eq!(c.clients[0].auth_methods.as_ref().unwrap().len(), 2);
        assert_eq!(c.routes[0].require, Require::Bearer);
        assert!(c.gateway.is_some());
    }
}
