//! The gateway's own settings: the `[gateway]` table of the config file.

use std::path::PathBuf;
use std::time::Duration;

use oauth_edge::config::ConfigError;
use oauth_edge::{Config, Secret};
use serde::Deserialize;

/// `[gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// Where clients connect.
    #[serde(default = "default_listeners")]
    pub(crate) listeners: Vec<Listener>,
    /// The APIs behind the gateway.
    #[serde(default)]
    pub(crate) upstreams: Vec<Upstream>,
    /// The upstream for routes that name none (and for requests that match no route).
    #[serde(default)]
    pub(crate) default_upstream: Option<String>,
    /// The admin API.
    #[serde(default)]
    pub(crate) admin: Admin,
    /// Downstream limits.
    #[serde(default)]
    pub(crate) limits: Limits,
    /// Worker threads; default: one per core.
    #[serde(default)]
    pub(crate) threads: Option<usize>,
    /// Whether idle worker threads take tasks from busy ones (pingora's `work_stealing`);
    /// default: when there is more than one thread (with one, there is nobody to steal from,
    /// and the single-threaded scheduler is cheaper).
    #[serde(default)]
    pub(crate) work_stealing: Option<bool>,
    /// How long in-flight requests get to finish at shutdown.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub(crate) grace_period: Duration,
    /// One line per request, on stderr with the other logs.
    #[serde(default = "yes")]
    pub(crate) access_log: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listeners: default_listeners(),
            upstreams: Vec::new(),
            default_upstream: None,
            admin: Admin::default(),
            limits: Limits::default(),
            threads: None,
            work_stealing: None,
            grace_period: default_grace(),
            access_log: true,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_grace() -> Duration {
    Duration::from_secs(10)
}

fn default_listeners() -> Vec<Listener> {
    vec![Listener {
        address: "127.0.0.1:8080".into(),
        tls: None,
        h2c: false,
    }]
}

/// A downstream listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Listener {
    /// `host:port`.
    pub(crate) address: String,
    /// Serve TLS (rustls) with this certificate chain and key, PEM. HTTP/2 is offered by ALPN.
    #[serde(default)]
    pub(crate) tls: Option<Tls>,
    /// Accept HTTP/2 without TLS (prior knowledge) as well as HTTP/1.1.
    #[serde(default)]
    pub(crate) h2c: bool,
}

/// A certificate and its key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tls {
    /// PEM certificate chain.
    pub(crate) cert: PathBuf,
    /// PEM private key.
    pub(crate) key: PathBuf,
}

/// An upstream: named, one or more addresses, round robin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Upstream {
    /// The name routes refer to.
    pub(crate) name: String,
    /// `host:port` of each server.
    pub(crate) addresses: Vec<String>,
    /// Connect with TLS.
    #[serde(default)]
    pub(crate) tls: bool,
    /// The SNI and certificate name for TLS; default: the host of the first address.
    #[serde(default)]
    pub(crate) sni: Option<String>,
    /// Health checks; without them every address is always eligible.
    #[serde(default)]
    pub(crate) health_check: Option<HealthCheck>,
    /// Connect timeout.
    #[serde(default = "default_connect", with = "humantime_serde")]
    pub(crate) connect_timeout: Duration,
    /// Longest wait for the upstream's answer (504 after it).
    #[serde(default = "default_read", with = "humantime_serde")]
    pub(crate) read_timeout: Duration,
}

fn default_connect() -> Duration {
    Duration::from_secs(5)
}

fn default_read() -> Duration {
    Duration::from_secs(60)
}

/// How an upstream's servers are checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthCheck {
    /// An HTTP path that must answer 2xx; without it, a TCP connect is the check.
    #[serde(default)]
    pub(crate) path: Option<String>,
    /// How often.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub(crate) interval: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(5)
}

/// The admin API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Admin {
    /// Where it listens; keep it private.
    #[serde(default = "default_admin")]
    pub(crate) address: String,
    /// The bearer token the admin API requires. Without one, only `/healthz`, `/readyz` and
    /// `/metrics` are served.
    #[serde(default)]
    pub(crate) token: Option<Secret>,
    /// Serve the admin API at all.
    #[serde(default = "yes")]
    pub(crate) enabled: bool,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            address: default_admin(),
            token: None,
            enabled: true,
        }
    }
}

fn default_admin() -> String {
    "127.0.0.1:9901".into()
}

/// Downstream limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Limits {
    /// Largest request head (request line and headers), bytes; past it, 431.
    pub(crate) max_header_bytes: usize,
    /// Longest time to receive a whole endpoint request body; past it, 408.
    #[serde(with = "humantime_serde")]
    pub(crate) body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 * 1024,
            body_timeout: Duration::from_secs(30),
        }
    }
}

impl Settings {
    /// Reads `[gateway]` out of a loaded config and checks it against the routes.
    pub(crate) fn from_config(config: &Config) -> Result<Settings, ConfigError> {
        let settings: Settings = match &config.gateway {
            None => Settings::default(),
            Some(table) => serde_path_to_error::deserialize(toml::Value::Table(table.clone()))
                .map_err(|e| {
                    let path = e.path().to_string();
                    let key = if path == "." {
                        "gateway".to_string()
                    } else {
                        format!("gateway.{path}")
                    };
                    ConfigError::new(key, e.into_inner().to_string())
                })?,
        };
        settings.validate(config)?;
        Ok(settings)
    }

    fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        if self.listeners.is_empty() {
            return Err(ConfigError::new(
                "gateway.listeners",
                "at least one listener",
            ));
        }
        for (i, l) in self.listeners.iter().enumerate() {
            if l.address.parse::<std::net::SocketAddr>().is_err() {
                return Err(ConfigError::new(
                    format!("gateway.listeners[{i}].address"),
                    "expected ip:port",
                ));
            }
            if let Some(tls) = &l.tls {
                for (k, p) in [("cert", &tls.cert), ("key", &tls.key)] {
                    if !p.is_file() {
                        return Err(ConfigError::new(
                            format!("gateway.listeners[{i}].tls.{k}"),
                            format!("{} is not a readable file", p.display()),
                        ));
                    }
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, u) in self.upstreams.iter().enumerate() {
            let key = |k: &str| format!("gateway.upstreams[{i}].{k}");
            if !names.insert(u.name.as_str()) {
                return Err(ConfigError::new(key("name"), "repeated upstream name"));
            }
            if u.addresses.is_empty() {
                return Err(ConfigError::new(key("addresses"), "at least one address"));
            }
            for a in &u.addresses {
                if a.rsplit_once(':')
                    .is_none_or(|(_, p)| p.parse::<u16>().is_err())
                {
                    return Err(ConfigError::new(
                        key("addresses"),
                        format!("{a:?} is not host:port"),
                    ));
                }
            }
        }
        if let Some(d) = &self.default_upstream {
            if !names.contains(d.as_str()) {
                return Err(ConfigError::new(
                    "gateway.default_upstream",
                    format!("no upstream named {d:?}"),
                ));
            }
        }
        for (i, r) in config.routes.iter().enumerate() {
            match &r.upstream {
                Some(u) if !names.contains(u.as_str()) => {
                    return Err(ConfigError::new(
                        format!("routes[{i}].upstream"),
                        format!("no upstream named {u:?} in gateway.upstreams"),
                    ))
                }
                None if self.default_upstream.is_none()
                    && r.require != oauth_edge::config::Require::None
                    && self.upstreams.len() != 1 =>
                {
                    return Err(ConfigError::new(
                        format!("routes[{i}].upstream"),
                        "names no upstream and gateway.default_upstream is not set",
                    ))
                }
                _ => {}
            }
        }
        if self.admin.enabled && self.admin.address.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "gateway.admin.address",
                "expected ip:port",
            ));
        }
        if self
            .admin
            .token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            return Err(ConfigError::new(
                "gateway.admin.token",
                "must not be empty (leave it out to turn /admin off)",
            ));
        }
        if self.limits.max_header_bytes < 1024 {
            return Err(ConfigError::new(
                "gateway.limits.max_header_bytes",
                "must be at least 1024",
            ));
        }
        Ok(())
    }

    /// The upstream a route goes to: its own, else the default, else the only one.
    pub(crate) fn upstream_for(&self, name: Option<&str>) -> Option<usize> {
        let name = name.or(self.default_upstream.as_deref());
        match name {
            Some(n) => self.upstreams.iter().position(|u| u.name == n),
            None if self.upstreams.len() == 1 => Some(0),
            None => None,
        }
    }
}
