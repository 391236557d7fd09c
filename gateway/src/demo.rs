//! `oauth-edge serve --demo`: the embedded default, ready for the README walk-through.
//!
//! An SQLite file in the data directory, an in-process upstream that echoes what it received,
//! a demo client whose new secret is printed at every start (and written to
//! `oauth-edge-demo.env` for the walk-through), and an admin token the same way.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use oauth_edge::{Config, Edge};
use serde_json::json;

use crate::settings::Settings;

pub(crate) fn run(
    data_dir: &Path,
    listen: SocketAddr,
    admin: SocketAddr,
    json_out: bool,
    address_file: Option<&Path>,
) -> ExitCode {
    match setup(data_dir, listen, admin) {
        Ok((config, settings, banner)) => {
            if json_out {
                println!("{}", banner.json);
            } else {
                println!("{}", banner.text);
            }
            crate::server::run(config, settings, address_file)
        }
        Err(e) => {
            eprintln!("oauth-edge: demo: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Banner {
    text: String,
    json: serde_json::Value,
}

fn setup(
    data_dir: &Path,
    listen: SocketAddr,
    admin: SocketAddr,
) -> Result<(Config, Settings, Banner), Box<dyn std::error::Error>> {
    oauth_edge::files::create_private_dir(data_dir)?;
    let upstream = TcpListener::bind("127.0.0.1:0")?;
    let upstream_addr = upstream.local_addr()?;
    upstream.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("demo-upstream".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the demo upstream");
            rt.block_on(echo_server(upstream));
        })?;

    let admin_token = oauth_edge::tokens_random(32);
    let db = data_dir.join("oauth-edge-demo.db");
    let text = format!(
        r#"
issuer = "http://{listen}"

[store]
kind = "sqlite"
path = {db:?}

[[routes]]
path = "/api"
require = "bearer"

[[routes]]
path = "/public"
require = "none"

[gateway]
default_upstream = "demo"

[[gateway.listeners]]
address = "{listen}"

[[gateway.upstreams]]
name = "demo"
addresses = ["{upstream_addr}"]

[gateway.admin]
address = "{admin}"
token = "{admin_token}"
"#,
        db = db.display().to_string(),
    );
    let config = Config::from_toml(&text)?;
    let settings = Settings::from_config(&config)?;

    // Create the demo client on the first start; give it a fresh secret on every start, so
    // the secret can be shown (it is stored only as a hash).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let secret = rt.block_on(async {
        let edge = Edge::new(config.clone()).await?;
        let secret = match edge.store().client("demo").await? {
            Some(_) => edge.client_admin().rotate_secret("demo").await,
            None => {
                let spec = crate::clients::NewClient {
                    id: "demo".into(),
                    name: Some("Demo client".into()),
                    scopes: vec!["read".into(), "write".into()],
                    grants: vec!["client_credentials".into()],
                    public: false,
                    redirect_uris: vec![],
                    introspect: true,
                    require_pkce: false,
                    skip_consent: false,
                };
                edge.client_admin()
                    .create(spec.into_config())
                    .await
                    .map(|s| s.expect("a confidential client gets a secret"))
            }
        };
        secret.map_err(|e| -> Box<dyn std::error::Error> { e.to_string().into() })
    })?;
    drop(rt);

    let env_file = data_dir.join("oauth-edge-demo.env");
    let mut f = oauth_edge::files::private_options()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&env_file)?;
    writeln!(
        f,
        "export CLIENT_ID=demo CLIENT_SECRET={} ADMIN_TOKEN={admin_token}",
        secret.expose()
    )?;

    let text = format!(
        "oauth-edge demo\n\
         \x20 gateway   http://{listen}   (routes: /api needs a bearer token, /public is open)\n\
         \x20 upstream  http://{upstream_addr}   (echoes what it receives)\n\
         \x20 admin     http://{admin}   token {admin_token}\n\
         \x20 store     {}\n\
         \x20 client    demo\n\
         \x20 secret    {}   (shown once per start; stored hashed)\n\
         \x20 env       {}   (source it for the README walk-through)\n",
        db.display(),
        secret.expose(),
        env_file.display()
    );
    let json = json!({
        "gateway": format!("http://{listen}"),
        "upstream": format!("http://{upstream_addr}"),
        "admin": format!("http://{admin}"),
        "admin_token": admin_token,
        "client_id": "demo",
        "client_secret": secret.expose(),
        "store": db.display().to_string(),
        "env_file": env_file.display().to_string(),
    });
    Ok((config, settings, Banner { text, json }))
}

/// An HTTP server that answers every request with what it received, as JSON.
pub(crate) async fn echo_server(listener: TcpListener) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(echo);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("<binary>"))))
        .collect();
    let body = json!({
        "method": req.method().as_str(),
        "uri": req.uri().to_string(),
        "headers": headers,
    });
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
