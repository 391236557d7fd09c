//! `oauth-edge client …`: the clients kept in the store, through the engine's
//! [`ClientAdmin`](oauth_edge::clients::ClientAdmin), as the admin API does. A new secret is
//! shown once and stored as a keyed hash.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use oauth_edge::clients::ClientAdminError;
use oauth_edge::config::ClientConfig;
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
    let admin = edge.client_admin();
    let result = match action {
        Action::Add(new) => {
            let id = new.id.clone();
            let c = new.into_config();
            admin.create(c).await.map(|secret| {
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
        Action::List => admin.list().await.map(|list| {
            if json {
                json!(list)
            } else {
                let lines: Vec<String> = list
                    .iter()
                    .map(|v| {
                        format!(
                            "{}\t{}\t{}\tscopes={}",
                            v.id,
                            if v.public { "public" } else { "confidential" },
                            v.source.as_str(),
                            json!(v.scopes)
                        )
                    })
                    .collect();
                json!(lines.join("\n"))
            }
        }),
        Action::Show { id } => admin.show(&id).await.map(|v| {
            if json {
                json!(v)
            } else {
                json!(serde_json::to_string_pretty(&v).unwrap_or_default())
            }
        }),
        Action::Remove { id } => admin.remove(&id).await.map(|revoked| {
            if json {
                json!({ "id": id, "removed": true, "revoked_families": revoked })
            } else {
                json!(format!(
                    "client {id} removed; its tokens are revoked ({revoked} grant families)"
                ))
            }
        }),
        Action::RotateSecret { id } => admin.rotate_secret(&id).await.map(|s| {
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
                ClientAdminError::Invalid(_) | ClientAdminError::Conflict(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
