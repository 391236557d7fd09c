//! The client registry and client authentication.
//!
//! Clients come from the config file and from the store (created at run time). Generated
//! secrets are 256-bit random strings stored as a keyed BLAKE3 hash (`blake3$key$hash`) and
//! checked in constant time; imported low-entropy secrets are argon2id, and a successful
//! argon2 check is remembered briefly so the token endpoint does not burn CPU per request.
//! An unknown client and a wrong secret take the same path to the same answer.

pub mod admin;

pub use admin::{ClientAdmin, ClientAdminError, ClientSource, ClientView};

use crate::metrics::AuthFailure;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::config::{AuthMethod, ClientConfig, LimitsConfig};
use crate::credentials::{Presented, Source};
use crate::error::{Challenge, OAuthError};
use crate::passwords::{verify_argon2, Busy};
use crate::scope::Scopes;
use crate::secret::Secret;
use crate::store::{Store, StoreError};

/// A registered client, checked and ready to use.
#[derive(Debug)]
pub struct Client {
    /// The client id.
    pub id: Arc<str>,
    /// A display name.
    pub name: Option<String>,
    /// Public clients have no secret.
    pub public: bool,
    secret: Option<SecretHash>,
    /// Grant types it may use.
    pub grants: Vec<String>,
    /// Scopes it may ask for.
    pub scopes: Scopes,
    /// Scopes it gets when it asks for none.
    pub default_scopes: Scopes,
    /// How it may authenticate.
    pub auth_methods: Vec<AuthMethod>,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// May introspect other clients' tokens.
    pub introspect: bool,
    /// Access token lifetime override.
    pub access_ttl: Option<Duration>,
    /// Authorization requests must carry a PKCE challenge (always true for public clients).
    pub require_pkce: bool,
    /// A signed-in user is not asked for consent.
    pub skip_consent: bool,
    /// Its passthrough quota.
    pub rate_limit: Option<crate::config::RateLimitConfig>,
}

impl Client {
    /// Builds a client from its config table. The table must have passed
    /// [`validate_client`].
    pub fn from_config(c: &ClientConfig) -> Result<Client, (&'static str, String)> {
        validate_client(c)?;
        let secret = match (&c.secret, &c.secret_hash) {
            (Some(s), None) => Some(SecretHash::Plain(s.clone())),
            (None, Some(h)) => Some(SecretHash::parse(h).map_err(|r| ("secret_hash", r))?),
            _ => None,
        };
        let scopes = Scopes::from_iter(&c.scopes);
        let default_scopes = c
            .default_scopes
            .as_ref()
            .map(Scopes::from_iter)
            .unwrap_or_else(|| scopes.clone());
        let auth_methods = c.auth_methods.clone().unwrap_or_else(|| {
            if c.public {
                vec![AuthMethod::None]
            } else {
                vec![
                    AuthMethod::ClientSecretBasic,
                    AuthMethod::ClientSecretPost,
                    AuthMethod::ClientSecretHeader,
                    AuthMethod::ClientCredentialsBearer,
                ]
            }
        });
        Ok(Client {
            id: c.id.as_str().into(),
            name: c.name.clone(),
            public: c.public,
            secret,
            grants: c.grants.clone(),
            scopes,
            default_scopes,
            auth_methods,
            redirect_uris: c.redirect_uris.clone(),
            introspect: c.introspect,
            access_ttl: c.access_ttl,
            require_pkce: c.require_pkce || c.public,
            skip_consent: c.skip_consent,
            rate_limit: c.rate_limit,
        })
    }

    /// True when the client may use `grant_type`.
    /// The device grant may be listed by its URN or as `device_code`.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grants.iter().any(|g| {
            g == grant_type
                || (grant_type == crate::grants::DEVICE_CODE && g == "device_code")
                || (g == crate::grants::DEVICE_CODE && grant_type == "device_code")
        })
    }

    /// True when the client may authenticate with `method`.
    pub fn allows_method(&self, method: AuthMethod) -> bool {
        self.auth_methods.contains(&method)
    }
}

/// Checks a client table; on error returns the key (relative to the table) and the reason.
pub fn validate_client(c: &ClientConfig) -> Result<(), (&'static str, String)> {
    if c.id.is_empty() || c.id.len() > 255 || c.id.chars().any(|ch| ch.is_control()) {
        return Err(("id", "must be 1-255 printable characters".into()));
    }
    if let Some(q) = &c.rate_limit {
        if q.requests == 0 || q.per.as_secs() == 0 {
            return Err((
                "rate_limit",
                "needs requests of at least 1 per at least 1s".into(),
            ));
        }
    }
    match (c.public, &c.secret, &c.secret_hash) {
        (true, None, None) => {}
        (true, _, _) => return Err(("public", "a public client has no secret".into())),
        (false, Some(_), Some(_)) => {
            return Err(("secret", "give secret or secret_hash, not both".into()))
        }
        (false, None, None) => {
            return Err((
                "secret_hash",
                "a confidential client needs secret or secret_hash".into(),
            ))
        }
        (false, None, Some(h)) => {
            SecretHash::parse(h).map_err(|r| ("secret_hash", r))?;
        }
        (false, Some(_), None) => {}
    }
    let scopes = crate::config::check_scopes(&c.scopes).map_err(|r| ("scopes", r))?;
    if let Some(d) = &c.default_scopes {
        let d = crate::config::check_scopes(d).map_err(|r| ("default_scopes", r))?;
        if !d.is_subset(&scopes) {
            return Err(("default_scopes", "must be a subset of scopes".into()));
        }
    }
    if let Some(m) = &c.auth_methods {
        if m.is_empty() {
            return Err(("auth_methods", "must not be empty".into()));
        }
        if c.public && m.iter().any(|m| *m != AuthMethod::None) {
            return Err((
                "auth_methods",
                "a public client can only use \"none\"".into(),
            ));
        }
        if !c.public && m.contains(&AuthMethod::None) {
            return Err((
                "auth_methods",
                "\"none\" is for public clients (set public = true)".into(),
            ));
        }
    }
    for g in &c.grants {
        if g.is_empty() || g.contains(char::is_whitespace) {
            return Err(("grants", format!("{g:?} is not a grant type")));
        }
    }
    if c.public && c.grants.iter().any(|g| g == "client_credentials") {
        return Err((
            "grants",
            "a public client cannot use client_credentials".into(),
        ));
    }
    for u in &c.redirect_uris {
        let ok = u
            .parse::<http::Uri>()
            .ok()
            .is_some_and(|uri| uri.scheme().is_some() && uri.host().is_some() && !u.contains('#'));
        if !ok {
            return Err((
                "redirect_uris",
                format!("{u:?} is not an absolute URI without a fragment"),
            ));
        }
    }
    Ok(())
}

/// How a client secret is kept.
#[derive(Clone)]
pub enum SecretHash {
    /// Keyed BLAKE3 for generated, high-entropy secrets.
    Blake3 {
        /// The per-secret key.
        key: [u8; 32],
        /// The keyed hash of the secret.
        hash: [u8; 32],
    },
    /// argon2id (PHC string) for imported, possibly low-entropy secrets.
    Argon2(String),
    /// A secret given in plain text in the config file.
    Plain(Secret),
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretHash::Blake3 { .. } => "SecretHash::Blake3([redacted])",
            SecretHash::Argon2(_) => "SecretHash::Argon2([redacted])",
            SecretHash::Plain(_) => "SecretHash::Plain([redacted])",
        })
    }
}

impl SecretHash {
    /// A new random client secret (256 bits, URL-unreserved characters) and its hash.
    pub fn generate() -> (Secret, SecretHash) {
        let secret = crate::tokens::random_string(32);
        let hash = Self::blake3(&secret);
        (Secret::new(secret), hash)
    }

    /// The keyed BLAKE3 hash of `secret` under a fresh random key.
    pub fn blake3(secret: &str) -> SecretHash {
        let mut key = [0u8; 32];
        crate::tokens::fill_random(&mut key);
        let hash = *blake3::keyed_hash(&key, secret.as_bytes()).as_bytes();
        SecretHash::Blake3 { key, hash }
    }

    /// The argon2id hash of `secret` with a fresh salt.
    pub fn argon2(secret: &str) -> SecretHash {
        let mut salt = [0u8; 16];
        crate::tokens::fill_random(&mut salt);
        let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
        let phc = Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .expect("argon2 with default parameters cannot fail")
            .to_string();
        SecretHash::Argon2(phc)
    }

    /// Parses `blake3$key$hash` or an argon2 PHC string.
    pub fn parse(s: &str) -> Result<SecretHash, String> {
        if let Some(rest) = s.strip_prefix("blake3$") {
            let (k, h) = rest
                .split_once('$')
                .ok_or_else(|| "expected blake3$<key>$<hash>".to_string())?;
            let dec =
                |x: &str| -> Option<[u8; 32]> { URL_SAFE_NO_PAD.decode(x).ok()?.try_into().ok() };
            match (dec(k), dec(h)) {
                (Some(key), Some(hash)) => Ok(SecretHash::Blake3 { key, hash }),
                _ => Err("blake3 key and hash must be 32 bytes of base64url".into()),
            }
        } else if s.starts_with("$argon2") {
            PasswordHash::new(s).map_err(|e| format!("not an argon2 PHC string: {e}"))?;
            Ok(SecretHash::Argon2(s.to_string()))
        } else {
            Err("expected blake3$<key>$<hash> or an argon2id PHC string".into())
        }
    }

    /// The stored form (`None` for plain-text secrets, which are never written out).
    pub fn encode(&self) -> Option<String> {
        match self {
            SecretHash::Blake3 { key, hash } => Some(format!(
                "blake3${}${}",
                URL_SAFE_NO_PAD.encode(key),
                URL_SAFE_NO_PAD.encode(hash)
            )),
            SecretHash::Argon2(s) => Some(s.clone()),
            SecretHash::Plain(_) => None,
        }
    }

    /// Checks `secret` against a fast hash. `None` for argon2, which must run off the
    /// async threads.
    fn verify_fast(&self, secret: &str) -> Option<bool> {
        match self {
            SecretHash::Blake3 { key, hash } => {
                let got = blake3::keyed_hash(key, secret.as_bytes());
                Some(got.as_bytes().ct_eq(hash).into())
            }
            SecretHash::Plain(s) => {
                // Hash both sides so the comparison time does not depend on the lengths.
                let a = blake3::hash(s.expose().as_bytes());
                let b = blake3::hash(secret.as_bytes());
                Some(a == b)
            }
            SecretHash::Argon2(_) => None,
        }
    }
}

/// A client that has proved who it is.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The client.
    pub client: Arc<Client>,
    /// How it authenticated.
    pub method: AuthMethod,
}

/// The clients from the config file, plus those in the store.
pub struct ClientRegistry {
    configured: HashMap<Arc<str>, Arc<Client>>,
    store: Arc<dyn Store>,
    stored: moka::future::Cache<Arc<str>, Option<Arc<Client>>>,
    /// Bumped by every [`ClientRegistry::forget`], after its invalidation: a store read that
    /// began before it may have seen the old client, and is not kept.
    changes: std::sync::atomic::AtomicU64,
    failures: moka::sync::Cache<(Arc<str>, Option<IpAddr>), Arc<AtomicU32>>,
    failure_limit: u32,
    failure_window: Duration,
}

impl std::fmt::Debug for ClientRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRegistry")
            .field("configured", &self.configured.len())
            .finish_non_exhaustive()
    }
}

/// A fixed hash that unknown client ids are checked against, so they cost what a real
/// check costs.
fn decoy() -> &'static SecretHash {
    static DECOY: std::sync::OnceLock<SecretHash> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| SecretHash::blake3("decoy"))
}

const AUTH_FAILED: &str = "client authentication failed";

impl ClientRegistry {
    /// A registry over the config's clients and the store's.
    pub fn new(
        clients: &[ClientConfig],
        store: Arc<dyn Store>,
        limits: &LimitsConfig,
    ) -> Result<Self, crate::config::ConfigError> {
        let mut configured = HashMap::new();
        for (i, c) in clients.iter().enumerate() {
            let client = Client::from_config(c).map_err(|(k, r)| {
                crate::config::ConfigError::new(format!("clients[{i}].{k}"), r)
            })?;
            configured.insert(client.id.clone(), Arc::new(client));
        }
        Ok(ClientRegistry {
            configured,
            store,
            // Run-time clients change through the admin API; a short TTL bounds how long an
            // instance that did not make the change keeps the old settings.
            stored: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
            changes: Default::default(),
            failures: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(limits.auth_failure_window)
                .build(),
            failure_limit: limits.auth_failures,
            failure_window: limits.auth_failure_window,
        })
    }

    /// Looks a client up: the config file first, then the store.
    pub async fn get(&self, id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        if let Some(c) = self.configured.get(id) {
            return Ok(Some(c.clone()));
        }
        let store = self.store.clone();
        let key: Arc<str> = id.into();
        let changes = self.changes.load(Ordering::Acquire);
        let found = self
            .stored
            .try_get_with(key.clone(), async move {
                let Some(rec) = store.client(&key).await? else {
                    return Ok(None);
                };
                let cfg: ClientConfig = serde_json::from_value(rec.settings)
                    .map_err(|e| StoreError::Backend(format!("stored client: {e}")))?;
                Client::from_config(&cfg)
                    .map(|c| Some(Arc::new(c)))
                    .map_err(|(k, r)| StoreError::Backend(format!("stored client {k}: {r}")))
            })
            .await
            .map_err(|e: Arc<StoreError>| StoreError::Backend(e.to_string()));
        // A change landed while this was read: what was read may be the old client, so it
        // answers this lookup only.
        if self.changes.load(Ordering::Acquire) != changes {
            self.stored.invalidate(id).await;
        }
        found
    }

    /// Forgets what is cached about a run-time client (after it was created, changed or
    /// deleted, here or on another instance).
    pub async fn forget(&self, id: &str) {
        self.stored.invalidate(id).await;
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// Forgets every cached run-time client (after a gap in the store's notices).
    pub fn forget_all(&self) {
        self.stored.invalidate_all();
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// True while `id` from `peer` has failed too often; the caller answers 429.
    fn throttled(&self, id: &str, peer: Option<IpAddr>) -> bool {
        self.failures
            .get(&(Arc::from(id), peer))
            .is_some_and(|n| n.load(Ordering::Relaxed) >= self.failure_limit)
    }

    fn record_failure(&self, id: &str, peer: Option<IpAddr>) {
        self.failures
            .get_with((Arc::from(id), peer), Default::default)
            .fetch_add(1, Ordering::Relaxed);
    }

    fn too_many(&self) -> OAuthError {
        OAuthError::invalid_client("too many failed attempts; retry later")
            .with_failure(AuthFailure::Throttled)
            .with_status(http::StatusCode::TOO_MANY_REQUESTS)
            .with_retry_after(self.failure_window.as_secs().max(1) as u32)
    }

    /// Authenticates a client that presented a secret, or a public client that presented
    /// only its id. `allowed` lists the methods the endpoint accepts. Bearer credentials are
    /// resolved by the edge, which owns the token cache; here they fail.
    pub async fn authenticate(
        &self,
        presented: &Presented,
        allowed: &[AuthMethod],
        peer: Option<IpAddr>,
    ) -> Result<Authenticated, OAuthError> {
        let challenge = presented.scheme();
        let fail = |d: &'static str| OAuthError::invalid_client(d).with_challenge(challenge);
        match presented {
            Presented::Nothing => {
                Err(fail("client authentication is required").with_failure(AuthFailure::Missing))
            }
            Presented::Bearer { .. } => Err(fail(AUTH_FAILED)),
            Presented::PublicId { id, .. } => {
                if self.throttled(id, peer) {
                    return Err(self.too_many());
                }
                let client = self.get(id).await?;
                match client {
                    Some(c) if c.public && allowed.contains(&AuthMethod::None) => {
                        Ok(Authenticated {
                            client: c,
                            method: AuthMethod::None,
                        })
                    }
                    // A confidential client must prove itself; its id alone is not enough.
                    // Whether the id is unknown, confidential, or public where public
                    // clients are not accepted, the answer and the throttling are the same,
                    // so a bare id does not reveal which clients exist.
                    _ => {
                        self.record_failure(id, peer);
                        Err(fail(AUTH_FAILED))
                    }
                }
            }
            Presented::Secret {
                id, secret, source, ..
            } => {
                if self.throttled(id, peer) {
                    return Err(self.too_many());
                }
                let method = source.method();
                let client = self.get(id).await?;
                let hash = client.as_ref().and_then(|c| c.secret.as_ref());
                let ok = match hash {
                    Some(h) => Self::verify(h, secret).await?,
                    None => {
                        let _ = decoy().verify_fast(secret.expose());
                        false
                    }
                };
                let Some(client) = client.filter(|_| ok) else {
                    self.record_failure(id, peer);
                    tracing::debug!(client_id = %id, "client authentication failed");
                    return Err(fail(AUTH_FAILED));
                };
                if !allowed.contains(&method) || !client.allows_method(method) {
                    return Err(fail(
                        "this authentication method is not allowed for this client here",
                    ));
                }
                Ok(Authenticated { client, method })
            }
        }
    }

    /// Checks `secret` against `hash`; an argon2 hash goes through [`crate::passwords`]'s gate.
    async fn verify(hash: &SecretHash, secret: &Secret) -> Result<bool, Busy> {
        if let Some(ok) = hash.verify_fast(secret.expose()) {
            return Ok(ok);
        }
        let SecretHash::Argon2(phc) = hash else {
            return Ok(false);
        };
        verify_argon2(phc.clone(), secret.clone()).await
    }
}

impl Source {
    /// The authentication method a secret from this source amounts to.
    pub fn method(self) -> AuthMethod {
        match self {
            Source::Basic => AuthMethod::ClientSecretBasic,
            Source::Form => AuthMethod::ClientSecretPost,
            Source::Header | Source::Query => AuthMethod::ClientSecretHeader,
        }
    }
}

impl Presented {
    /// The HTTP authentication scheme the credentials came in, if any: Basic or Bearer. The
    /// answer to a failure names the schemes the endpoint accepts; this tells whether the
    /// Bearer one is told that a token was refused (RFC 6750 3.1).
    pub fn scheme(&self) -> Option<Challenge> {
        match self {
            Presented::Secret {
                source: Source::Basic,
                ..
            } => Some(Challenge::Basic),
            Presented::Bearer { .. } => Some(Challenge::Bearer),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn generated_secrets_verify_and_round_trip() {
        let (secret, hash) = SecretHash::generate();
        assert!(secret
            .expose()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let parsed = SecretHash::parse(&hash.encode().unwrap()).unwrap();
        assert_eq!(parsed.verify_fast(secret.expose()), Some(true));
        assert_eq!(parsed.verify_fast("wrong"), Some(false));
    }

    #[tokio::test]
    async fn argon2_secrets_verify() {
        let h = SecretHash::argon2("pw");
        let SecretHash::Argon2(phc) = &h else {
            panic!()
        };
        assert_eq!(
            verify_argon2(phc.clone(), Secret::new("pw")).await,
            Ok(true)
        );
        assert_eq!(
            verify_argon2(phc.clone(), Secret::new("px")).await,
            Ok(false)
        );
        assert!(SecretHash::parse(phc).is_ok());
    }

    #[tokio::test]
    async fn a_bare_client_id_does_not_reveal_the_client() {
        let config = crate::Config::from_toml(
            r#"
[store]
kind = "memory"
[[clients]]
id = "conf"
secret = "s"
[[clients]]
id = "pub"
public = true
grants = ["password"]
"#,
        )
        .unwrap();
        let limits = LimitsConfig {
            auth_failures: 1,
            ..Default::default()
        };
        let reg = ClientRegistry::new(
            &config.clients,
            Arc::new(crate::store::MemoryStore::new()),
            &limits,
        )
        .unwrap();
        let bare = |id: &str| Presented::PublicId { id: id.into() };
        let no_public = [AuthMethod::ClientSecretBasic];
        let unknown = reg.authenticate(&bare("nobody"), &no_public, None).await;
        let conf = reg.authenticate(&bare("conf"), &no_public, None).await;
        let public = reg.authenticate(&bare("pub"), &no_public, None).await;
        assert_eq!(unknown.as_ref().unwrap_err().code, ErrorCode::InvalidClient);
        assert_eq!(conf.unwrap_err(), *unknown.as_ref().unwrap_err());
        assert_eq!(public.unwrap_err(), *unknown.as_ref().unwrap_err());
        // Each counted as a failure: the next try is throttled, as for an unknown id.
        let again = reg.authenticate(&bare("conf"), &no_public, None).await;
        assert_eq!(
            again.unwrap_err().status(),
            http::StatusCode::TOO_MANY_REQUESTS
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let (_, h) = SecretHash::generate();
        assert!(!format!("{h:?}").contains(&h.encode().unwrap()[8..20]));
    }
}
