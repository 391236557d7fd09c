//! Building and running the pingora server.

use std::net::TcpListener;
use std::process::ExitCode;

use oauth_edge::{Config, Edge};
use pingora::apps::HttpServerOptions;
use pingora::listeners::tls::TlsSettings;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;
use pingora::services::background::background_service;

use crate::admin::AdminService;
use crate::proxy::Gateway;
use crate::settings::Settings;
use crate::upstreams::Pool;

/// Builds the edge and runs the gateway until SIGTERM (graceful: in-flight requests finish
/// within the grace period) or SIGINT.
pub(crate) fn run(config: Config, settings: Settings) -> ExitCode {
    match build(config, settings) {
        Ok(server) => server.run_forever(),
        Err(e) => {
            eprintln!("oauth-edge: {e}");
            ExitCode::FAILURE
        }
    }
}

fn build(config: Config, settings: Settings) -> Result<Server, Box<dyn std::error::Error>> {
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

    // Bind the admin listener now, so a taken port fails the start instead of a background task.
    if settings.admin.enabled {
        let listener = TcpListener::bind(&settings.admin.address)
            .map_err(|e| format!("gateway.admin.address {}: {e}", settings.admin.address))?;
        listener.set_nonblocking(true)?;
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
    for l in &settings.listeners {
        match &l.tls {
            Some(tls) => {
                let cert = tls.cert.to_string_lossy();
                let key = tls.key.to_string_lossy();
                let mut t = TlsSettings::intermediate(&cert, &key)?;
                t.enable_h2();
                proxy.add_tls_with_settings(&l.address, None, t);
            }
            None => proxy.add_tcp(&l.address),
        }
    }
    server.add_service(proxy);
    Ok(server)
}
