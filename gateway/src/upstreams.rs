//! Upstream selection: round robin over each upstream's healthy servers.

use std::sync::Arc;
use std::time::Duration;

use pingora::lb::health_check::{HttpHealthCheck, TcpHealthCheck};
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use pingora::prelude::HttpPeer;
use pingora::services::background::{background_service, GenBackgroundService};

use crate::settings::Upstream;

/// One upstream, ready to pick servers from.
pub(crate) struct Pool {
    pub(crate) name: String,
    lb: Arc<LoadBalancer<RoundRobin>>,
    /// The peer with this upstream's settings, made once; each pick is a copy of it with the
    /// server's address.
    template: HttpPeer,
    /// One server and no health check: there is nothing to pick, so the template is the peer.
    single: bool,
}

impl Pool {
    /// Builds the pool, and the background service that health-checks it, if any.
    pub(crate) fn new(
        u: &Upstream,
    ) -> std::io::Result<(Pool, Option<GenBackgroundService<LoadBalancer<RoundRobin>>>)> {
        let mut lb =
            LoadBalancer::<RoundRobin>::try_from_iter(u.addresses.iter().map(String::as_str))?;
        let sni = u.sni.clone().unwrap_or_else(|| {
            u.addresses[0]
                .rsplit_once(':')
                .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
                .unwrap_or_default()
        });
        let service = match &u.health_check {
            None => None,
            Some(hc) => {
                match &hc.path {
                    Some(path) => {
                        let mut check = HttpHealthCheck::new(&sni, u.tls);
                        if let Ok(uri) = path.parse() {
                            check.req.set_uri(uri);
                        }
                        check.peer_template.options.connection_timeout = Some(u.connect_timeout);
                        check.peer_template.options.read_timeout = Some(u.connect_timeout);
                        lb.set_health_check(Box::new(check));
                    }
                    None => {
                        let mut check = if u.tls {
                            TcpHealthCheck::new_tls(&sni)
                        } else {
                            TcpHealthCheck::new()
                        };
                        check.peer_template.options.connection_timeout = Some(u.connect_timeout);
                        lb.set_health_check(check);
                    }
                }
                lb.health_check_frequency = Some(hc.interval);
                Some(background_service(&format!("health check {}", u.name), lb))
            }
        };
        let lb = match &service {
            Some(s) => s.task(),
            None => Arc::new(LoadBalancer::<RoundRobin>::try_from_iter(
                u.addresses.iter().map(String::as_str),
            )?),
        };
        let servers = lb.backends().get_backend();
        let single = service.is_none() && servers.len() == 1;
        let first = servers
            .iter()
            .next()
            .map(|b| b.addr.clone())
            .ok_or_else(|| std::io::Error::other(format!("upstream {}: no address", u.name)))?;
        // SNI is for TLS only; a plain peer's is empty (no copy of it per request).
        let mut template = HttpPeer::new(first, u.tls, if u.tls { sni } else { String::new() });
        template.options.connection_timeout = Some(u.connect_timeout);
        template.options.total_connection_timeout = Some(u.connect_timeout * 2);
        template.options.read_timeout = Some(u.read_timeout);
        template.options.write_timeout = Some(u.read_timeout);
        template.options.idle_timeout = Some(Duration::from_secs(60));
        Ok((
            Pool {
                name: u.name.clone(),
                lb,
                template,
                single,
            },
            service,
        ))
    }

    /// The next healthy server, as a peer to connect to.
    pub(crate) fn peer(&self) -> Option<HttpPeer> {
        if self.single {
            return Some(self.template.clone());
        }
        let backend = self.lb.select(b"", 256)?;
        let mut peer = self.template.clone();
        peer._address = backend.addr;
        Some(peer)
    }
}
