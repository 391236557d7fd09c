//! `oauth-edge`: the pingora gateway.
//!
//! ```text
//! oauth-edge serve --config oauth-edge.toml
//! oauth-edge serve --demo
//! oauth-edge check-config oauth-edge.toml
//! oauth-edge client add --config oauth-edge.toml --id billing --scope invoices.read
//! oauth-edge migrate --config oauth-edge.toml
//! ```

mod admin;
mod clients;
mod demo;
mod logging;
mod metrics;
mod proxy;
mod server;
mod settings;
mod upstreams;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use oauth_edge::config::{ConfigError, StoreConfig, SyncMode};
use oauth_edge::store::{SqliteStore, Synchronous};
use oauth_edge::Config;

use crate::settings::Settings;

/// mimalloc instead of the system allocator: pingora allocates per request (futures, buffers,
/// header maps), and glibc's malloc was 15 % of the gateway's CPU under load. See
/// `benches/load/README.md` for the measurement.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An OAuth2 authorization edge in front of your APIs.
#[derive(Parser)]
#[command(name = "oauth-edge", version, about)]
struct Cli {
    /// Print results as JSON (for scripts).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// The config file. Default: ./oauth-edge.toml.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Run the embedded demo: an SQLite file, an echo upstream and a demo client.
        #[arg(long, conflicts_with = "config")]
        demo: bool,
        /// Where the demo keeps its files.
        #[arg(long, default_value = ".", requires = "demo")]
        data_dir: PathBuf,
        /// The demo gateway's address.
        #[arg(long, default_value = "127.0.0.1:8080", requires = "demo")]
        listen: std::net::SocketAddr,
        /// The demo admin API's address.
        #[arg(long, default_value = "127.0.0.1:9901", requires = "demo")]
        admin_listen: std::net::SocketAddr,
        /// Once every listener is bound, write the addresses they are bound to here, as JSON
        /// (`{"admin": …, "listeners": […]}`): how to learn the ports the system chose for
        /// addresses configured with port 0.
        #[arg(long)]
        address_file: Option<PathBuf>,
    },
    /// Check a config file and exit: 0 when it is good, 2 when not.
    CheckConfig {
        /// The config file.
        file: PathBuf,
    },
    /// Bring the store's schema up to date and exit: 0 when it is, 1 when not, 2 on a config
    /// error.
    ///
    /// PostgreSQL: applies the migrations the schema lacks and prints the version (each
    /// instance also migrates when it starts; run this to migrate before a rollout). SQLite
    /// migrates when opened; the memory store has nothing to migrate.
    Migrate {
        /// The config file. Default: ./oauth-edge.toml.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Manage the clients kept in the store.
    Client {
        /// The config file whose store holds the clients. Default: ./oauth-edge.toml.
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: clients::Action,
    },
}

/// A config file and the gateway settings in it.
pub(crate) fn load(path: &std::path::Path) -> Result<(Config, Settings), ConfigError> {
    let config = Config::from_file(path)?;
    let settings = Settings::from_config(&config)?;
    Ok((config, settings))
}

fn config_path(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| PathBuf::from("oauth-edge.toml"))
}

/// Reports a config error the way scripts and people both read it; exit status 2.
pub(crate) fn config_failure(e: &ConfigError, json: bool) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::json!({ "ok": false, "key": e.key, "reason": e.reason })
        );
    } else {
        eprintln!("oauth-edge: {e}");
    }
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    match cli.command {
        Command::Serve {
            config,
            demo,
            data_dir,
            listen,
            admin_listen,
            address_file,
        } => {
            let address_file = address_file.as_deref();
            if demo {
                return demo::run(&data_dir, listen, admin_listen, cli.json, address_file);
            }
            let path = config_path(config);
            match load(&path) {
                Ok((config, settings)) => server::run(config, settings, address_file),
                Err(e) => config_failure(&e, cli.json),
            }
        }
        Command::CheckConfig { file } => match load(&file) {
            Ok((config, settings)) => {
                if cli.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "ok": true,
                            "clients": config.clients.len(),
                            "routes": config.routes.len(),
                            "upstreams": settings.upstreams.len(),
                            "listeners": settings.listeners.len(),
                        })
                    );
                } else {
                    println!(
                        "{}: ok ({} clients, {} routes, {} upstreams, {} listeners)",
                        file.display(),
                        config.clients.len(),
                        config.routes.len(),
                        settings.upstreams.len(),
                        settings.listeners.len()
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => config_failure(&e, cli.json),
        },
        Command::Client { config, action } => clients::run(&config_path(config), action, cli.json),
        Command::Migrate { config } => migrate(&config_path(config), cli.json),
    }
}

/// `oauth-edge migrate`.
fn migrate(path: &std::path::Path, json: bool) -> ExitCode {
    let (config, _) = match load(path) {
        Ok(c) => c,
        Err(e) => return config_failure(&e, json),
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
    match rt.block_on(migrate_store(&config.store)) {
        Ok(done) => {
            if json {
                println!("{}", serde_json::json!({ "ok": true, "store": done }));
            } else {
                println!("{}", done["summary"].as_str().unwrap_or("ok"));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                println!("{}", serde_json::json!({ "ok": false, "reason": e }));
            } else {
                eprintln!("oauth-edge: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Migrates the configured store; says what was done, or why it failed.
async fn migrate_store(store: &StoreConfig) -> Result<serde_json::Value, String> {
    match store {
        #[cfg(feature = "postgres")]
        StoreConfig::Postgres(pg) => {
            let version = oauth_edge::store::PostgresStore::migrate(pg)
                .await
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({
                "kind": "postgres",
                "schema": pg.schema,
                "version": version,
                "summary": format!("postgres schema {:?}: version {version}", pg.schema),
            }))
        }
        #[cfg(not(feature = "postgres"))]
        StoreConfig::Postgres(_) => Err(
            "this build has no PostgreSQL support (build the gateway with feature `postgres`)"
                .into(),
        ),
        StoreConfig::Sqlite { path, synchronous } => {
            let sync = match synchronous {
                SyncMode::Full => Synchronous::Full,
                SyncMode::Normal => Synchronous::Normal,
            };
            let p = path.clone();
            tokio::task::spawn_blocking(move || SqliteStore::open(p, sync))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({
                "kind": "sqlite",
                "path": path,
                "summary": format!("sqlite {}: up to date", path.display()),
            }))
        }
        StoreConfig::Memory => Ok(serde_json::json!({
            "kind": "memory",
            "summary": "memory store: nothing to migrate",
        })),
    }
}
