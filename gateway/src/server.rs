//! Building and running the pingora server.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use async_trait::async_trait;

use oauth_edge::{Config, Edge};
use pingora::apps::HttpServerOptions;
use pingora::listeners::tls::TlsSettings;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;
use pingora::server::{Fds, ListenFds, ShutdownWatch};
use pingora::services::background::background_service;
use pingora::services::Service;

use crate::admin::AdminService;
use crate::proxy::Gateway;
use crate::settings::Settings;
use crate::upstreams::Pool;

/// Builds the edge and runs the gateway until SIGTERM (graceful: in-flight requests finish
/// within the grace period) or SIGINT. With `address_file`, the addresses the listeners are
/// bound to are written there once they all listen (see [`Bound::write`]).
pub(crate) fn run(config: Config, settings: Settings, address_file: Option<&Path>) -> ExitCode {
    let started = build(config, settings).and_then(|(server, bound)| {
        if let Some(path) = address_file {
            bound
                .write(path)
                .map_err(|e| format!("--address-file {}: {e}", path.display()))?;
        }
        Ok(server)
    });
    match started {
        Ok(server) => server.run_forever(),
        Err(e) => {
            eprintln!("oauth-edge: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The addresses the gateway listens on, as bound: a configured port 0 becomes the port the
/// system chose.
pub(crate) struct Bound {
    admin: Option<SocketAddr>,
    listeners: Vec<SocketAddr>,
}

impl Bound {
    /// Writes `{"admin": "127.0.0.1:9901", "listeners": ["127.0.0.1:8080", …]}` (listeners
    /// in the order of `[[gateway.listeners]]`; `admin` null when it is disabled) to `path`,
    /// through a temporary file and a rename, so a reader never sees half of it. Every socket
    /// already listens when the file appears: a connection made then waits in the backlog
    /// until the server accepts it.
    fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::json!({
            "admin": self.admin.map(|a| a.to_string()),
            "listeners": self.listeners.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        })
        .to_string();
        let mut partial = PathBuf::from(path);
        partial.as_mut_os_string().push(".partial");
        std::fs::write(&partial, text + "\n")?;
        std::fs::rename(&partial, path)
    }
}

/// The proxy service with its listening sockets bound before the server starts.
///
/// Pingora binds a listener from its address string when the service starts, on the service's
/// own thread: a taken port then panics there ("Failed to build listeners") after the process
/// has already reported nothing wrong, and a port 0 gets a port nobody can learn. Binding here
/// instead makes a taken port fail the start with the config key named, and lets the gateway
/// report the port it got. The sockets reach pingora through its table of listening sockets
/// (the one a graceful upgrade fills). Pingora looks a socket up by the address string its
/// listener was added with; the listeners are added with the address each socket is bound
/// to, which is unique, where two configured `127.0.0.1:0` would not be.
struct Prebound<S> {
    inner: S,
    sockets: Vec<(String, TcpListener)>,
}

#[async_trait]
impl<S: Service> Service for Prebound<S> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        listeners_per_fd: usize,
    ) {
        let fds = fds.unwrap_or_else(|| std::sync::Arc::new(Fds::new().into()));
        {
            let mut table = fds.lock();
            for (key, socket) in self.sockets.drain(..) {
                // Pingora takes the descriptor over and closes it with the listener.
                table.add(key, socket.into_raw_fd());
            }
        }
        self.inner
            .start_service(Some(fds), shutdown, listeners_per_fd)
            .await
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn threads(&self) -> Option<usize> {
        self.inner.threads()
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        self.inner.listen_addresses()
    }
}

/// Binds every `[[gateway.listeners]]` address (see [`Prebound`]), in config order, each
/// with the address it is bound to.
fn bind_listeners(settings: &Settings) -> Result<Vec<(SocketAddr, TcpListener)>, String> {
    let mut sockets = Vec::with_capacity(settings.listeners.len());
    for (i, l) in settings.listeners.iter().enumerate() {
        let failed =
            |e: std::io::Error| format!("gateway.listeners[{i}].address {}: {e}", l.address);
        let socket = TcpListener::bind(&l.address).map_err(failed)?;
        socket.set_nonblocking(true).map_err(failed)?;
        sockets.push((socket.local_addr().map_err(failed)?, socket));
    }
    Ok(sockets)
}

fn build(
    config: Config,
    settings: Settings,
) -> Result<(Server, Bound), Box<dyn std::error::Error>> {
    // The edge opens its store here; its request work later runs on pingora's runtimes. Its
    // background tasks (revocation notices from other instances, housekeeping) run on this
    // runtime, which therefore lives as long as the process.
    let background = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("oauth-edge-background")
        .enable_all()
        .build()?;
    let edge = background.block_on(Edge::new(config))?;
    Box::leak(Box::new(background));

    let threads = settings
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let grace = settings.grace_period.as_secs().max(1);
    let conf = ServerConf {
        threads,
        work_stealing: settings.work_stealing.unwrap_or(threads > 1),
        grace_period_seconds: Some(grace),
        graceful_shutdown_timeout_seconds: Some(grace),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let mut pools = Vec::new();
    for u in &settings.upstreams {
        let (pool, health) = Pool::new(u)?;
        if let Some(h) = health {
            server.add_service(h);
        }
        pools.push(pool);
    }
    let gateway = Gateway::new(edge.clone(), &settings, pools);

    // Bind the listeners now, so a taken port fails the start instead of a background task.
    let sockets = bind_listeners(&settings)?;
    let mut bound = Bound {
        admin: None,
        listeners: Vec::with_capacity(sockets.len()),
    };
    for (addr, _) in &sockets {
        tracing::info!("proxy listening on {addr}");
        bound.listeners.push(*addr);
    }
    if settings.admin.enabled {
        let listener = TcpListener::bind(&settings.admin.address)
            .map_err(|e| format!("gateway.admin.address {}: {e}", settings.admin.address))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        tracing::info!("admin listening on {addr}");
        bound.admin = Some(addr);
        let admin = AdminService::new(
            edge.clone(),
            gateway.metrics.clone(),
            settings.admin.clone(),
            listener,
        );
        server.add_service(background_service("admin", admin));
    }

    let mut proxy = http_proxy_service(&server.configuration, gateway);
    if settings.listeners.iter().any(|l| l.tls.is_none() && l.h2c) {
        if let Some(app) = proxy.app_logic_mut() {
            let mut options = HttpServerOptions::default();
            options.h2c = true;
            app.server_options = Some(options);
        }
    }
    for (l, (addr, _)) in settings.listeners.iter().zip(&sockets) {
        let addr = addr.to_string();
        match &l.tls {
            Some(tls) => {
                let cert = tls.cert.to_string_lossy();
                let key = tls.key.to_string_lossy();
                let mut t = TlsSettings::intermediate(&cert, &key)?;
                t.enable_h2();
                proxy.add_tls_with_settings(&addr, None, t);
            }
            None => proxy.add_tcp(&addr),
        }
    }
    server.add_service(Prebound {
        inner: proxy,
        sockets: sockets
            .into_iter()
            .map(|(addr, socket)| (addr.to_string(), socket))
            .collect(),
    });
    Ok((server, bound))
}
