//! Clients kept in the store: created at run time by `oauth-edge client …` or the admin API.
//! A new secret is shown once and stored as a keyed hash.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use oauth_edge::clients::{validate_client, SecretHash};
use oauth_edge::config::ClientConfig;
use oauth_edge::store::{ClientRecord, StoreError};
use oauth_edge::{Config, Edge, Secret};
use serde::Deserialize;
use serde_json::json;

/// `oauth-edge client …`.
#[derive(Subcommand)]
pub(crate) enum Action {
    /// Create a client. A confidential client's secret is printed once.
    Add(NewClient),
    /// List the clients: the store's, then the config file's (never a secret).
    List,
    /// Show one client.
    Show {
        /// The client id.
        id: String,
    },
    /// Delete a client and revoke all its tokens.
    Remove {
        /// The client id.
        id: String,
    },
    /// Give a client a new secret (printed once); the old one stops working.
    RotateSecret {
        /// The client id.
        id: String,
    },
}

/// A new client: the flags of `oauth-edge client add`, and the body of `POST /admin/clients`.
#[derive(clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewClient {
    /// The client id.
    #[arg(long)]
    pub(crate) id: String,
    /// A display name.
    #[arg(long)]
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// A scope it may ask for (repeat for several).
    #[arg(long = "scope")]
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    /// A grant type it may use (repeat for several). Default: client_credentials
    /// (refresh_token for a public client).
    #[arg(long = "grant")]
    #[serde(default)]
    pub(crate) grants: Vec<String>,
    /// A public client: no secret.
    #[arg(long)]
    #[serde(default)]
    pub(crate) public: bool,
    /// A redirect URI (repeat for several).
    #[arg(long = "redirect-uri")]
    #[serde(default)]
    pub(crate) redirect_uris: Vec<String>,
    /// May introspect other clients' tokens.
    #[arg(long)]
    #[serde(default)]
    pub(crate) introspect: bool,
    /// Its authorization requests must carry PKCE (public clients always must).
    #[arg(long)]
    #[serde(default)]
    pub(crate) require_pkce: bool,
    /// A signed-in user is not asked for consent (first-party clients).
    #[arg(long)]
    #[serde(default)]
    pub(crate) skip_consent: bool,
}

/// Why a client operation failed.
#[derive(Debug)]
pub(crate) enum ClientError {
    /// The request is wrong (bad id, bad scope, a public client has no secret…).
    Invalid(String),
    /// No such client.
    NotFound,
    /// The request clashes with what exists: the id is taken, or the client is declared in
    /// the config file (change it there).
    Conflict(String),
    /// The store failed (or holds a record it cannot read): not the caller's fault.
    Store(StoreError),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Invalid(m) | ClientError::Conflict(m) => f.write_str(m),
            ClientError::NotFound => f.write_str("no such client"),
            ClientError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl From<StoreError> for ClientError {
    fn from(e: StoreError) -> Self {
        ClientError::Store(e)
    }
}

const DECLARED: &str = "this client is declared in the config file; change it there";

/// Serialises the writes of this process, so two creations of one id cannot both pass the
/// existence check, and two rotations cannot interleave their read and write. (The store has
/// no insert-if-absent, so a second process writing the same store is not covered.)
static WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn declared<'e>(edge: &'e Edge, id: &str) -> Option<&'e ClientConfig> {
    edge.config().clients.iter().find(|c| c.id == id)
}

/// A stored client's settings, or a store error when the record cannot be read back.
fn stored_settings(rec: &ClientRecord) -> Result<ClientConfig, ClientError> {
    serde_json::from_value(rec.settings.clone()).map_err(|e| {
        ClientError::Store(StoreError::Backend(format!(
            "stored client {:?} is unreadable: {e}",
            rec.id
        )))
    })
}

/// A stored client as shown to people and scripts: never the secret or its hash.
pub(crate) fn public_view(rec: &ClientRecord) -> serde_json::Value {
    let mut v = rec.settings.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("secret_hash");
        o.remove("secret");
        // The two flags as the config view shows them, also when the stored settings leave
        // them out (off): a public client always needs PKCE.
        let flag = |o: &serde_json::Map<String, serde_json::Value>, k: &str| {
            o.get(k)
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false)
        };
        let pkce = flag(o, "require_pkce") || flag(o, "public");
        let skip = flag(o, "skip_consent");
        o.insert("require_pkce".into(), pkce.into());
        o.insert("skip_consent".into(), skip.into());
        o.insert("created_at".into(), rec.created_at.into());
        o.insert("source".into(), "store".into());
    }
    v
}

/// A client of the config file as shown to people and scripts: never its secret.
pub(crate) fn config_view(c: &ClientConfig) -> serde_json::Value {
    json!({
        "id": c.id,
        "name": c.name,
        "public": c.public,
        "grants": c.grants,
        "scopes": c.scopes,
        "redirect_uris": c.redirect_uris,
        "introspect": c.introspect,
        "require_pkce": c.require_pkce || c.public,
        "skip_consent": c.skip_consent,
        "rate_limit": c.rate_limit.and_then(|q| serde_json::to_value(q).ok()),
        "source": "config",
    })
}

/// Every client: the store's, then the config file's.
pub(crate) async fn list(edge: &Edge) -> Result<Vec<serde_json::Value>, ClientError> {
    let stored = edge.store().list_clients().await?;
    Ok(stored
        .iter()
        .map(public_view)
        .chain(edge.config().clients.iter().map(config_view))
        .collect())
}

/// One client, as the registry resolves it: the config file first, then the store.
pub(crate) async fn show(edge: &Edge, id: &str) -> Result<serde_json::Value, ClientError> {
    if let Some(c) = declared(edge, id) {
        return Ok(config_view(c));
    }
    match edge.store().client(id).await? {
        Some(rec) => Ok(public_view(&rec)),
        None => Err(ClientError::NotFound),
    }
}

/// Creates a client in the store. Returns its new secret (none for public clients).
pub(crate) async fn create(
    edge: &Edge,
    mut client: ClientConfig,
) -> Result<Option<Secret>, ClientError> {
    let secret = if client.public {
        client.secret_hash = None;
        None
    } else {
        let (secret, hash) = SecretHash::generate();
        client.secret_hash = hash.encode();
        Some(secret)
    };
    client.secret = None;
    validate_client(&client).map_err(|(k, r)| ClientError::Invalid(format!("{k}: {r}")))?;
    if declared(edge, &client.id).is_some() {
        return Err(ClientError::Conflict(
            "a client with this id is declared in the config file".into(),
        ));
    }
    let settings = serde_json::to_value(&client)
        .map_err(|e| ClientError::Store(StoreError::Backend(e.to_string())))?;
    let _writing = WRITES.lock().await;
    if edge.store().client(&client.id).await?.is_some() {
        return Err(ClientError::Conflict("a client with this id exists".into()));
    }
    let rec = ClientRecord {
        id: client.id.clone(),
        settings,
        created_at: oauth_edge::unix_now(),
    };
    edge.store().put_client(&rec).await?;
    // A lookup before the creation may have cached "no such client".
    edge.clients().forget(&client.id).await;
    Ok(secret)
}

/// Gives a stored confidential client a new secret; the old one stops working on this
/// instance at once (elsewhere within the registry's cache lifetime, 5 s).
pub(crate) async fn rotate_secret(edge: &Edge, id: &str) -> Result<Secret, ClientError> {
    if declared(edge, id).is_some() {
        return Err(ClientError::Conflict(DECLARED.into()));
    }
    let _writing = WRITES.lock().await;
    let mut rec = edge
        .store()
        .client(id)
        .await?
        .ok_or(ClientError::NotFound)?;
    let mut client = stored_settings(&rec)?;
    if client.public {
        return Err(ClientError::Invalid("a public client has no secret".into()));
    }
    let (secret, hash) = SecretHash::generate();
    client.secret_hash = hash.encode();
    rec.settings = serde_json::to_value(&client)
        .map_err(|e| ClientError::Store(StoreError::Backend(e.to_string())))?;
    edge.store().put_client(&rec).await?;
    edge.clients().forget(id).await;
    Ok(secret)
}

/// Deletes a stored client and revokes its tokens. Returns how many grant families were
/// revoked.
pub(crate) async fn remove(edge: &Edge, id: &str) -> Result<usize, ClientError> {
    if declared(edge, id).is_some() {
        return Err(ClientError::Conflict(DECLARED.into()));
    }
    let _writing = WRITES.lock().await;
    if edge.store().client(id).await?.is_none() {
        return Err(ClientError::NotFound);
    }
    // Revoke through the edge first: it marks this instance's cache, so the tokens stop
    // working at once. `delete_client` revokes in the store too, but does not say which
    // families, so after it `revoke_all` would find nothing left to mark.
    let revoked = edge.revoke_all(Some(id), None).await?;
    edge.store()
        .delete_client(id, oauth_edge::unix_now())
        .await?;
    edge.clients().forget(id).await;
    Ok(revoked)
}

impl NewClient {
    /// The client table it describes.
    pub(crate) fn into_config(self) -> ClientConfig {
        let grants = match (self.grants.is_empty(), self.public) {
            (false, _) => self.grants,
            (true, true) => vec!["refresh_token".into()],
            (true, false) => vec!["client_credentials".into()],
        };
        ClientConfig {
            id: self.id,
            name: self.name,
            secret: None,
            secret_hash: None,
            public: self.public,
            grants,
            scopes: self.scopes,
            default_scopes: None,
            auth_methods: None,
            redirect_uris: self.redirect_uris,
            introspect: self.introspect,
            access_ttl: None,
            rate_limit: None,
            require_pkce: self.require_pkce,
            skip_consent: self.skip_consent,
        }
    }
}

/// Runs `oauth-edge client …`.
pub(crate) fn run(config_path: &Path, action: Action, json: bool) -> ExitCode {
    let (config, _) = match crate::load(config_path) {
        Ok(c) => c,
        Err(e) => return crate::config_failure(&e, json),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("oauth-edge: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run_action(config, action, json))
}

async fn run_action(config: Config, action: Action, json: bool) -> ExitCode {
    let edge = match Edge::new(config).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("oauth-edge: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match action {
        Action::Add(new) => {
            let id = new.id.clone();
            let c = new.into_config();
            create(&edge, c).await.map(|secret| {
                if json {
                    json!({ "id": id, "secret": secret.as_ref().map(Secret::expose) })
                } else {
                    match secret {
                        Some(s) => json!(format!(
                            "client {id} created\nsecret: {}\n(shown once; stored hashed)",
                            s.expose()
                        )),
                        None => json!(format!("public client {id} created")),
                    }
                }
            })
        }
        Action::List => list(&edge).await.map(|list| {
            if json {
                json!(list)
            } else {
                let lines: Vec<String> = list
                    .iter()
                    .map(|v| {
                        format!(
                            "{}\t{}\t{}\tscopes={}",
                            v["id"].as_str().unwrap_or_default(),
                            if v["public"] == true {
                                "public"
                            } else {
                                "confidential"
                            },
                            v["source"].as_str().unwrap_or_default(),
                            v["scopes"]
                        )
                    })
                    .collect();
                json!(lines.join("\n"))
            }
        }),
        Action::Show { id } => show(&edge, &id).await.map(|v| {
            if json {
                v
            } else {
                json!(serde_json::to_string_pretty(&v).unwrap_or_default())
            }
        }),
        Action::Remove { id } => remove(&edge, &id).await.map(|revoked| {
            if json {
                json!({ "id": id, "removed": true, "revoked_families": revoked })
            } else {
                json!(format!(
                    "client {id} removed; its tokens are revoked ({revoked} grant families)"
                ))
            }
        }),
        Action::RotateSecret { id } => rotate_secret(&edge, &id).await.map(|s| {
            if json {
                json!({ "id": id, "secret": s.expose() })
            } else {
                json!(format!(
                    "new secret for {id}: {}\n(shown once; the old one no longer works)",
                    s.expose()
                ))
            }
        }),
    };
    match result {
        Ok(v) => {
            match v {
                serde_json::Value::String(s) if !json => println!("{s}"),
                v => println!("{v}"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                println!("{}", json!({ "error": e.to_string() }));
            } else {
                eprintln!("oauth-edge: {e}");
            }
            match e {
                ClientError::Invalid(_) | ClientError::Conflict(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
