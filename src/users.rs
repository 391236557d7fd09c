//! Resource owners: who may sign in with the password grant (and, later, the login pages).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::UserConfig;
use crate::passwords::{decoy_phc, verify_argon2};
use crate::scope::Scopes;
use crate::secret::Secret;
use crate::store::StoreError;

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user id handed to upstreams.
    pub id: String,
    /// When set, tokens for this user carry at most these scopes.
    pub scopes: Option<Scopes>,
}

/// Where users and their passwords live.
#[async_trait]
pub trait UserDirectory: Send + Sync + 'static {
    /// Checks a username and password. `Ok(None)` for an unknown user or a wrong password,
    /// alike; `Err` when the directory could not answer.
    async fn authenticate(
        &self,
        username: &str,
        password: &Secret,
    ) -> Result<Option<User>, StoreError>;

    /// A fingerprint of what the directory holds for `username` (say a hash of their password
    /// record), `None` when there is no such user. The sign-in pages seal a keyed tag of it into
    /// the session cookie and compare it on every use: a session ends when its user is removed
    /// or the stamp changes (a new password). It is never shown or logged.
    async fn stamp(&self, username: &str) -> Result<Option<[u8; 32]>, StoreError>;
}

enum Password {
    Plain(Secret),
    Argon2(String),
}

/// The built-in user table: users from the config file, passwords as argon2id.
pub struct StaticUsers {
    users: HashMap<String, (Password, Option<Scopes>)>,
}

impl std::fmt::Debug for StaticUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticUsers")
            .field("users", &self.users.len())
            .finish()
    }
}

impl StaticUsers {
    /// The users of the config file, which must have passed validation.
    pub fn new(users: &[UserConfig]) -> Self {
        let users = users
            .iter()
            .map(|u| {
                let pw = match (&u.password, &u.password_hash) {
                    (Some(p), _) => Password::Plain(p.clone()),
                    (None, Some(h)) => Password::Argon2(h.clone()),
                    (None, None) => Password::Plain(Secret::new(crate::tokens::random_string(32))),
                };
                (
                    u.username.clone(),
                    (pw, u.scopes.as_ref().map(Scopes::from_iter)),
                )
            })
            .collect();
        StaticUsers { users }
    }

    /// Wraps the table for the edge.
    pub fn shared(self) -> Arc<dyn UserDirectory> {
        Arc::new(self)
    }
}

#[async_trait]
impl UserDirectory for StaticUsers {
    async fn authenticate(
        &self,
        username: &str,
        password: &Secret,
    ) -> Result<Option<User>, StoreError> {
        // An unknown user and a plain-text one spend what an argon2 check spends, so timing
        // tells neither who exists nor how their password is kept.
        let Some((pw, scopes)) = self.users.get(username) else {
            verify_argon2(decoy_phc().await, password.clone()).await?;
            return Ok(None);
        };
        let ok = match pw {
            Password::Plain(p) => {
                verify_argon2(decoy_phc().await, password.clone()).await?;
                blake3::hash(p.expose().as_bytes()) == blake3::hash(password.expose().as_bytes())
            }
            Password::Argon2(phc) => verify_argon2(phc.clone(), password.clone()).await?,
        };
        Ok(ok.then(|| User {
            id: username.to_string(),
            scopes: scopes.clone(),
        }))
    }

    async fn stamp(&self, username: &str) -> Result<Option<[u8; 32]>, StoreError> {
        Ok(self.users.get(username).map(|(pw, _)| {
            let mut h = blake3::Hasher::new_derive_key("oauth-edge 2026 user stamp");
            match pw {
                Password::Plain(p) => h.update(b"plain\0").update(p.expose().as_bytes()),
                Password::Argon2(phc) => h.update(b"argon2\0").update(phc.as_bytes()),
            };
            *h.finalize().as_bytes()
        }))
    }
}
