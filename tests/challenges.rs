//! Every 401 carries a challenge (RFC 9110 15.5.2, RFC 6749 5.2), end to end against a real
//! listening server with the four profiles mounted at once.
//!
//! The walk: every endpoint of every profile that authenticates clients, and the passthrough
//! routes that do, times every way of failing client authentication. Each answer must be the
//! profile's own (status and `error`), and each 401 must carry one `WWW-Authenticate` per HTTP
//! scheme the endpoint accepts, in the realm `oauth-edge`, a Bearer challenge saying
//! `invalid_token` only when a token was sent. Where an endpoint accepts no HTTP scheme
//! (Kustvakt's revoke, the authorization pages), a failed authentication is a 400 instead.
//! Every mismatch is collected, so that a failure lists all of them at once.

#[path = "support/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::{basic, TestServer};
use serde_json::Value;

const CONFIG: &str = r#"
issuer = "http://auth.test"
[store]
kind = "memory"

[limits]
auth_failures = 100000

[[clients]]
id = "svc"
secret = "svc-secret"
grants = ["client_credentials", "password", "device_code"]
scopes = ["read"]

[[clients]]
id = "tv"
public = true
grants = ["device_code"]
scopes = ["read"]

[[clients]]
id = "web"
secret = "web-secret"
grants = ["authorization_code"]
scopes = ["read"]
redirect_uris = ["https://web.example/cb"]

[[users]]
username = "alice"
password = "wonderland"

[[profiles]]
kind = "rfc"
base = "/oauth2"

[[profiles]]
kind = "npr"
base = "/authorization/v2"

[[profiles]]
kind = "ibm"
base = "/api"

[[profiles]]
kind = "kustvakt"
base = "/api/v1.0/oauth2"

[[routes]]
path = "/client"
require = "client"

[[routes]]
path = "/either"
require = "either"

[[routes]]
path = "/data"
require = "bearer"
"#;

/// A challenge as expected: the scheme and its `error` parameter, if any.
type Challenge = (&'static str, Option<&'static str>);

const BASIC: Challenge = ("Basic", None);
const BEARER: Challenge = ("Bearer", None);
const BEARER_INVALID: Challenge = ("Bearer", Some("invalid_token"));

/// One endpoint (or passthrough route) and what a failed client authentication gets there.
struct Endpoint {
    name: &'static str,
    path: &'static str,
    /// The rest of a request that would succeed with good credentials.
    form: &'static [(&'static str, &'static str)],
    /// The status of a failed client authentication.
    status: u16,
    /// The body's `error` then.
    error: &'static str,
    /// The challenges then, when no token was sent.
    challenges: &'static [Challenge],
    /// The body's `error` and the challenges when a Bearer token was sent and failed.
    bearer: (&'static str, &'static [Challenge]),
    /// Whether credentials may come in the query (elsewhere a secret there is
    /// `400 invalid_request`).
    query: bool,
}

const TOKEN_FORM: &[(&str, &str)] = &[("grant_type", "client_credentials")];
const REVOKE_FORM: &[(&str, &str)] = &[("token", "oea_not-a-token")];

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        name: "rfc token",
        path: "/oauth2/token",
        form: TOKEN_FORM,
        status: 401,
        error: "invalid_client",
        challenges: &[BASIC],
        bearer: ("invalid_client", &[BASIC]),
        query: false,
    },
    Endpoint {
        name: "rfc revoke",
        path: "/oauth2/revoke",
        form: REVOKE_FORM,
        status: 401,
        error: "invalid_client",
        challenges: &[BASIC, BEARER],
        bearer: ("invalid_client", &[BASIC, BEARER_INVALID]),
        query: false,
    },
    Endpoint {
        name: "rfc introspect",
        path: "/oauth2/introspect",
        form: REVOKE_FORM,
        status: 401,
        error: "invalid_client",
        challenges: &[BASIC, BEARER],
        bearer: ("invalid_client", &[BASIC, BEARER_INVALID]),
        query: false,
    },
    Endpoint {
        name: "rfc device_authorization",
        path: "/oauth2/device_authorization",
        form: &[],
        status: 401,
        error: "invalid_client",
        challenges: &[BASIC],
        bearer: ("invalid_client", &[BASIC]),
        query: false,
    },
    Endpoint {
        name: "npr token",
        path: "/authorization/v2/token",
        form: TOKEN_FORM,
        status: 401,
        error: "invalid_client",
        challenges: &[BASIC],
        bearer: ("invalid_client", &[BASIC]),
        query: false,
    },
    Endpoint {
        name: "npr revoke",
        path: "/authorization/v2/token/revoke",
        form: REVOKE_FORM,
        status: 401,
        error: "invalid_client",
        challenges: &[BEARER],
        bearer: ("invalid_client", &[BEARER_INVALID]),
        query: false,
    },
    Endpoint {
        name: "npr device",
        path: "/authorization/v2/device",
        form: &[],
        status: 401,
        error: "invalid_client",
        challenges: &[BASIC],
        bearer: ("invalid_client", &[BASIC]),
        query: false,
    },
    Endpoint {
        name: "ibm revoke",
        path: "/api/password/oauth2/revoke",
        form: REVOKE_FORM,
        status: 401,
        error: "unauthorized_client",
        challenges: &[BASIC],
        bearer: ("unauthorized_client", &[BASIC]),
        query: true,
    },
    // Form fields only: no HTTP scheme to name, so no 401.
    Endpoint {
        name: "kustvakt revoke",
        path: "/api/v1.0/oauth2/revoke",
        form: REVOKE_FORM,
        status: 400,
        error: "invalid_client",
        challenges: &[],
        bearer: ("invalid_client", &[]),
        query: false,
    },
    // Passthrough: Basic, the X-IBM pair (headers or query), a client_credentials token.
    Endpoint {
        name: "route require=client",
        path: "/client/x",
        form: &[],
        status: 401,
        error: "invalid_client",
        challenges: &[BASIC, BEARER],
        bearer: ("invalid_client", &[BASIC, BEARER_INVALID]),
        query: true,
    },
    // Any access token, or what a client route takes.
    Endpoint {
        name: "route require=either",
        path: "/either/x",
        form: &[],
        status: 401,
        error: "invalid_client",
        challenges: &[BASIC, BEARER],
        bearer: ("invalid_token", &[BASIC, BEARER_INVALID]),
        query: true,
    },
    // A bearer route takes no client credentials: they count as no token (RFC 6750 3.1).
    Endpoint {
        name: "route require=bearer",
        path: "/data/x",
        form: &[],
        status: 401,
        error: "unauthorized",
        challenges: &[BEARER],
        bearer: ("invalid_token", &[BEARER_INVALID]),
        query: true,
    },
];

/// Every way a request can fail to authenticate its client.
#[derive(Debug, Clone, Copy)]
enum Placement {
    WrongBasic,
    /// Not base64.
    MalformedBasic,
    WrongFormSecret,
    UnknownClientInForm,
    WrongIbmHeaders,
    WrongIbmQuery,
    /// A client_credentials token of `svc`, revoked.
    RevokedBearer,
    /// A string that was never a token.
    ForgedBearer,
    Nothing,
    /// A confidential client's id alone, in the form.
    ConfidentialIdAlone,
}

const PLACEMENTS: &[Placement] = &[
    Placement::WrongBasic,
    Placement::MalformedBasic,
    Placement::WrongFormSecret,
    Placement::UnknownClientInForm,
    Placement::WrongIbmHeaders,
    Placement::WrongIbmQuery,
    Placement::RevokedBearer,
    Placement::ForgedBearer,
    Placement::Nothing,
    Placement::ConfidentialIdAlone,
];

/// An answer, as read.
struct Answer {
    status: u16,
    challenges: Vec<String>,
    content_type: String,
    body: String,
}

impl Answer {
    async fn read(r: reqwest::Response) -> Answer {
        let status = r.status().as_u16();
        let challenges = r
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        let content_type = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = r.text().await.unwrap();
        Answer {
            status,
            challenges,
            content_type,
            body,
        }
    }

    fn error(&self) -> Option<String> {
        let v: Value = serde_json::from_str(&self.body).ok()?;
        v["error"].as_str().map(str::to_string)
    }
}

/// `(scheme, error)` of one `WWW-Authenticate` value, after checking its realm.
fn parse_challenge(value: &str) -> Result<(String, Option<String>), String> {
    let (scheme, params) = value.split_once(' ').unwrap_or((value, ""));
    if !params.contains("realm=\"oauth-edge\"") {
        return Err(format!("{value:?}: not in the realm \"oauth-edge\""));
    }
    let error = params.split(", ").find_map(|p| {
        p.strip_prefix("error=\"")
            .map(|e| e.trim_end_matches('"').to_string())
    });
    Ok((scheme.to_string(), error))
}

/// Collects what does not match.
#[derive(Default)]
struct Mismatches(Vec<String>);

impl Mismatches {
    /// The rule every answer follows: a 401 carries at least one challenge.
    fn every_401_is_challenged(&mut self, what: &str, a: &Answer) {
        if a.status == 401 && a.challenges.is_empty() {
            self.0
                .push(format!("{what}: 401 without WWW-Authenticate: {}", a.body));
        }
    }

    fn expect(
        &mut self,
        what: &str,
        a: &Answer,
        status: u16,
        error: &str,
        challenges: &[Challenge],
    ) {
        self.every_401_is_challenged(what, a);
        if a.status != status || a.error().as_deref() != Some(error) {
            self.0.push(format!(
                "{what}: expected {status} {error}, got {} {}",
                a.status, a.body
            ));
        }
        if !a.content_type.starts_with("application/json") {
            self.0
                .push(format!("{what}: not JSON ({:?})", a.content_type));
        }
        let got: Result<Vec<_>, _> = a.challenges.iter().map(|c| parse_challenge(c)).collect();
        let mut got = match got {
            Ok(g) => g,
            Err(e) => {
                self.0.push(format!("{what}: {e}"));
                return;
            }
        };
        let mut want: Vec<(String, Option<String>)> = challenges
            .iter()
            .map(|(s, e)| (s.to_string(), e.map(str::to_string)))
            .collect();
        got.sort();
        want.sort();
        if got != want {
            self.0.push(format!(
                "{what}: challenges {:?}, expected {want:?}",
                a.challenges
            ));
        }
    }

    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} mismatches:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// Sends `placement` to `ep`.
async fn send(s: &TestServer, ep: &Endpoint, placement: Placement, revoked: &str) -> Answer {
    let mut form: Vec<(&str, &str)> = ep.form.to_vec();
    let mut url = s.url(ep.path);
    let mut req = s.http.post(&url);
    match placement {
        Placement::WrongBasic => req = req.header("authorization", basic("svc", "wrong")),
        Placement::MalformedBasic => req = req.header("authorization", "Basic !!not*base64!!"),
        Placement::WrongFormSecret => {
            form.push(("client_id", "svc"));
            form.push(("client_secret", "wrong"));
        }
        Placement::UnknownClientInForm => {
            form.push(("client_id", "nobody"));
            form.push(("client_secret", "wrong"));
        }
        Placement::WrongIbmHeaders => {
            req = req
                .header("x-ibm-client-id", "svc")
                .header("x-ibm-client-secret", "wrong")
        }
        Placement::WrongIbmQuery => {
            url.push_str("?client_id=svc&client_secret=wrong");
            req = s.http.post(&url);
        }
        Placement::RevokedBearer => req = req.bearer_auth(revoked),
        Placement::ForgedBearer => req = req.bearer_auth("oea_forged-never-issued"),
        Placement::Nothing => {}
        Placement::ConfidentialIdAlone => form.push(("client_id", "svc")),
    }
    Answer::read(req.form(&form).send().await.unwrap()).await
}

/// A client_credentials token of `svc`, then revoked.
async fn revoked_token(s: &TestServer) -> String {
    let t = s.client_token("svc", "svc-secret", None).await;
    let t = t["access_token"].as_str().unwrap().to_string();
    let r = s
        .post_form(
            "/oauth2/revoke",
            &[("authorization", &basic("svc", "svc-secret"))],
            &[("token", &t)],
        )
        .await;
    assert_eq!(r.status(), 200);
    t
}

#[tokio::test]
async fn every_failed_client_authentication_is_answered_with_the_endpoints_challenges() {
    let s = TestServer::start(CONFIG).await;
    let revoked = revoked_token(&s).await;
    let mut m = Mismatches::default();
    let mut walked = 0;
    for ep in ENDPOINTS {
        for &placement in PLACEMENTS {
            let what = format!("{} × {placement:?}", ep.name);
            let a = send(&s, ep, placement, &revoked).await;
            walked += 1;
            match placement {
                // RFC 6749 2.3.1: a secret in the URI is refused outright where the query is
                // no place for credentials.
                Placement::WrongIbmQuery if !ep.query => {
                    m.expect(&what, &a, 400, "invalid_request", &[])
                }
                Placement::RevokedBearer | Placement::ForgedBearer => {
                    m.expect(&what, &a, ep.status, ep.bearer.0, ep.bearer.1)
                }
                _ => m.expect(&what, &a, ep.status, ep.error, ep.challenges),
            }
        }
    }
    assert_eq!(walked, ENDPOINTS.len() * PLACEMENTS.len());
    m.assert_none();
}

#[tokio::test]
async fn npr_s_own_401s_carry_the_token_endpoint_s_challenge() {
    let s = TestServer::start(CONFIG).await;
    let mut m = Mismatches::default();
    let svc = basic("svc", "svc-secret");
    let svc = [("authorization", svc.as_str())];
    let npr_token = |form: &'static [(&'static str, &'static str)]| {
        s.post_form("/authorization/v2/token", &svc, form)
    };
    // "the user credentials were invalid (password grant type)": 401.
    let a = Answer::read(
        npr_token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "nope"),
        ])
        .await,
    )
    .await;
    m.expect(
        "npr password, wrong password",
        &a,
        401,
        "invalid_grant",
        &[BASIC],
    );
    // "the user has not yet logged in (device_code grant type)": 401.
    let d = Answer::read(
        s.post_form(
            "/authorization/v2/device",
            &[("authorization", &basic("svc", "svc-secret"))],
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(d.status, 200, "{}", d.body);
    let d: Value = serde_json::from_str(&d.body).unwrap();
    let code = d["device_code"].as_str().unwrap().to_string();
    let a = Answer::read(
        s.post_form(
            "/authorization/v2/token",
            &[("authorization", &basic("svc", "svc-secret"))],
            &[("grant_type", "device_code"), ("code", &code)],
        )
        .await,
    )
    .await;
    m.expect(
        "npr device_code, pending",
        &a,
        401,
        "authorization_pending",
        &[BASIC],
    );
    // A code nobody issued: invalid_grant, 401 in NPR's words.
    let a = Answer::read(
        npr_token(&[("grant_type", "device_code"), ("code", "oed_never-issued")]).await,
    )
    .await;
    m.expect(
        "npr device_code, unknown",
        &a,
        401,
        "invalid_grant",
        &[BASIC],
    );
    m.assert_none();
}

/// The pages accept no HTTP scheme: what they refuse is a 400, never a 401 without a
/// challenge (and never a Basic challenge, which would make a browser ask for a password).
#[tokio::test]
async fn the_authorization_pages_never_answer_401() {
    let s = TestServer::start(CONFIG).await;
    let mut m = Mismatches::default();
    let mut b = Browser::new(s.url(""));
    let authorize = |base: &str, client: &str, redirect: &str| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code");
        q.append_pair("client_id", client);
        q.append_pair("redirect_uri", redirect);
        q.append_pair("state", "st");
        format!("{base}/authorize?{}", q.finish())
    };
    let page = |m: &mut Mismatches, what: &str, status: u16, want: u16, body: &str| {
        let body = &body[body.find("<main").unwrap_or(0)..];
        if status == 401 {
            m.0.push(format!("{what}: a page answered 401: {body}"));
        } else if status != want {
            m.0.push(format!("{what}: expected {want}, got {status}: {body}"));
        }
    };

    // An unknown client, or a redirect_uri the client does not have: a page (rfc) or JSON
    // (npr), 400 invalid_client.
    for (what, url) in [
        (
            "rfc authorize, unknown client",
            authorize("/oauth2", "nobody", "https://web.example/cb"),
        ),
        (
            "npr authorize, unknown client",
            authorize("/authorization/v2", "nobody", "https://web.example/cb"),
        ),
        (
            "npr authorize, unregistered redirect_uri",
            authorize("/authorization/v2", "web", "https://evil.example/cb"),
        ),
    ] {
        let p = b.get(&url).await;
        page(&mut m, what, p.status, 400, &p.body);
        if !p.body.contains("invalid_client") {
            m.0.push(format!("{what}: not invalid_client: {}", p.body));
        }
    }

    // A wrong password on the sign-in form: the form again, 400.
    let sign_in = b
        .get(&authorize("/oauth2", "web", "https://web.example/cb"))
        .await;
    assert_eq!(sign_in.status, 200, "{}", sign_in.body);
    let again = b
        .submit(&sign_in, &[("username", "alice"), ("password", "nope")])
        .await;
    page(
        &mut m,
        "sign-in, wrong password",
        again.status,
        400,
        &again.body,
    );
    assert!(again.body.contains("role=\"alert\""), "{}", again.body);

    // The same on the device page.
    let d = s
        .post_form("/oauth2/device_authorization", &[], &[("client_id", "tv")])
        .await;
    assert_eq!(d.status(), 200);
    let d: Value = d.json().await.unwrap();
    let mut b = Browser::new(s.url(""));
    let entry = b.get("/oauth2/device").await;
    let sign_in = b
        .submit(&entry, &[("user_code", d["user_code"].as_str().unwrap())])
        .await;
    assert_eq!(sign_in.status, 200, "{}", sign_in.body);
    let again = b
        .submit(&sign_in, &[("username", "alice"), ("password", "nope")])
        .await;
    page(
        &mut m,
        "device sign-in, wrong password",
        again.status,
        400,
        &again.body,
    );
    m.assert_none();
}
