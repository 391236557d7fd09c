//! The token endpoint's grants, end to end through a real server: `client_credentials`,
//! `password`, `refresh_token` (rotation, replay revoking the family, scope narrowing, client
//! binding) and NPR's `temporary_user`/`anonymous_user` extension grants, with every error
//! code each can answer; plus 500 concurrent issuances that must each belong to the client
//! that asked (Kong 14358), and access tokens that stop working when they expire.
mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{basic, TestServer, CONFIG};
use oauth_edge::clock::ManualClock;
use serde_json::Value;

const TOKEN: &str = "/oauth2/token";

/// `common::CONFIG` with a 15-minute access TTL (so `expires_in` is not the default) and a
/// client with its own TTL override.
fn config() -> String {
    config_with_ttl("15m")
}

fn config_with_ttl(ttl: &str) -> String {
    config_with_tokens(&format!("access_ttl = \"{ttl}\""))
}

/// `common::CONFIG` plus the client `short` and this `[tokens]` table.
fn config_with_tokens(tokens: &str) -> String {
    format!(
        r#"{CONFIG}
[[clients]]
id = "short"
secret = "short-secret"
scopes = ["read"]
access_ttl = "2m"

[tokens]
{tokens}
"#
    )
}

async fn server() -> TestServer {
    TestServer::start(&config()).await
}

/// A token endpoint answer: status and JSON body.
struct Answer {
    status: u16,
    json: Value,
}

impl Answer {
    #[track_caller]
    fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.json);
        assert_eq!(self.json["token_type"], "Bearer", "{}", self.json);
        assert!(
            self.json["access_token"].as_str().is_some(),
            "{}",
            self.json
        );
        &self.json
    }

    #[track_caller]
    fn err(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(code)),
            "{}",
            self.json
        );
        assert!(self.json.get("access_token").is_none());
    }

    fn access(&self) -> &str {
        self.ok()["access_token"].as_str().unwrap()
    }

    fn refresh(&self) -> &str {
        self.ok()["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no refresh token in {}", self.json))
    }
}

/// POSTs `form` to the token endpoint as client `id` (Basic), or with no client
/// authentication when `id` is empty.
async fn token(s: &TestServer, id: &str, form: &[(&str, &str)]) -> Answer {
    // Every client of the config has the secret `<id>-secret`, except basic-only.
    let secret = match id {
        "basic-only" => "basic-secret".to_string(),
        id => format!("{id}-secret"),
    };
    let auth = basic(id, &secret);
    let headers: &[(&str, &str)] = if id.is_empty() {
        &[]
    } else {
        &[("authorization", &auth)]
    };
    let r = s.post_form(TOKEN, headers, form).await;
    let status = r.status().as_u16();
    let (cc, pragma) = (
        r.headers().get("cache-control").cloned(),
        r.headers().get("pragma").cloned(),
    );
    assert_eq!(cc.as_ref().map(|v| v.to_str().unwrap()), Some("no-store"));
    assert_eq!(
        pragma.as_ref().map(|v| v.to_str().unwrap()),
        Some("no-cache")
    );
    let json = r.json().await.unwrap();
    Answer { status, json }
}

async fn password(s: &TestServer, id: &str, user: &str, pw: &str, scope: Option<&str>) -> Answer {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", user),
        ("password", pw),
    ];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    token(s, id, &form).await
}

async fn refresh(s: &TestServer, id: &str, rt: &str, scope: Option<&str>) -> Answer {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    token(s, id, &form).await
}

/// What the upstream saw for a request with `access`: `Ok(identity)` or `Err(status,
/// WWW-Authenticate)`.
async fn api(s: &TestServer, access: &str) -> Result<Value, (u16, String)> {
    let r = s.get_bearer("/api/x", access).await;
    if r.status() != 200 {
        let status = r.status().as_u16();
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["error"].as_str(),
            challenge
                .contains("error=\"invalid_token\"")
                .then_some("invalid_token"),
            "{body}"
        );
        return Err((status, challenge));
    }
    let v: Value = r.json().await.unwrap();
    Ok(v["identity"].clone())
}

#[track_caller]
fn assert_refused(r: Result<Value, (u16, String)>) {
    match r {
        Ok(id) => panic!("token still admitted as {id}"),
        Err((status, challenge)) => {
            assert_eq!(status, 401);
            assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// client_credentials

#[tokio::test]
async fn client_credentials_default_scopes() {
    let s = server().await;
    let a = token(&s, "svc", &[("grant_type", "client_credentials")]).await;
    let t = a.ok();
    assert_eq!(t["scope"], "read");
    assert_eq!(t["expires_in"], 900);
    assert!(t.get("refresh_token").is_none(), "{t}");
    let id = api(&s, a.access()).await.unwrap();
    assert_eq!(id["client_id"], "svc");
    assert_eq!(id["user"], Value::Null);
    assert_eq!(id["scope"], "read");

    // `other` has no default_scopes: it gets all of its scopes.
    let a = token(&s, "other", &[("grant_type", "client_credentials")]).await;
    assert_eq!(a.ok()["scope"], "read write");
}

#[tokio::test]
async fn client_credentials_explicit_scope() {
    let s = server().await;
    let a = token(
        &s,
        "svc",
        &[("grant_type", "client_credentials"), ("scope", "write")],
    )
    .await;
    assert_eq!(a.ok()["scope"], "write");
    assert_eq!(api(&s, a.access()).await.unwrap()["scope"], "write");
    let a = token(
        &s,
        "svc",
        &[
            ("grant_type", "client_credentials"),
            ("scope", "write admin"),
        ],
    )
    .await;
    assert_eq!(a.ok()["scope"], "admin write");
    assert!(a.ok().get("refresh_token").is_none());
}

#[tokio::test]
async fn client_credentials_scope_outside_the_client_is_invalid_scope() {
    let s = server().await;
    for scope in ["delete", "read delete", "admin"] {
        let id = if scope == "admin" { "other" } else { "svc" };
        let a = token(
            &s,
            id,
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        a.err(400, "invalid_scope");
    }
    // Outside the scope-token grammar.
    let a = token(
        &s,
        "svc",
        &[("grant_type", "client_credentials"), ("scope", "re\"ad")],
    )
    .await;
    a.err(400, "invalid_scope");
}

#[tokio::test]
async fn client_credentials_expires_in_is_the_configured_ttl() {
    let s = server().await;
    let a = token(&s, "svc", &[("grant_type", "client_credentials")]).await;
    assert_eq!(a.ok()["expires_in"], 900);
    // A client's own access_ttl wins.
    let a = token(&s, "short", &[("grant_type", "client_credentials")]).await;
    assert_eq!(a.ok()["expires_in"], 120);
    // The default without a [tokens] table is one hour.
    let d = TestServer::start(CONFIG).await;
    let a = token(&d, "svc", &[("grant_type", "client_credentials")]).await;
    assert_eq!(a.ok()["expires_in"], 3600);
}

#[tokio::test]
async fn public_client_cannot_use_client_credentials() {
    let s = server().await;
    let a = token(
        &s,
        "",
        &[("grant_type", "client_credentials"), ("client_id", "app")],
    )
    .await;
    a.err(400, "unauthorized_client");
}

// ---------------------------------------------------------------------------------------
// grant_type itself

#[tokio::test]
async fn grant_not_configured_for_the_client_is_unauthorized_client() {
    let s = server().await;
    // basic-only and rs may only use client_credentials.
    let a = password(&s, "basic-only", "alice", "wonderland", None).await;
    a.err(400, "unauthorized_client");
    let a = token(
        &s,
        "rs",
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    a.err(400, "unauthorized_client");
    let a = token(&s, "rs", &[("grant_type", "temporary_user")]).await;
    a.err(400, "unauthorized_client");
}

#[tokio::test]
async fn unknown_grant_type_is_unsupported_grant_type() {
    let s = server().await;
    for g in [
        "authorization_codee",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "CLIENT_CREDENTIALS",
    ] {
        let a = token(&s, "svc", &[("grant_type", g)]).await;
        a.err(400, "unsupported_grant_type");
    }
}

#[tokio::test]
async fn missing_grant_type_is_invalid_request() {
    let s = server().await;
    let a = token(&s, "svc", &[("scope", "read")]).await;
    a.err(400, "invalid_request");
    // Empty counts as absent.
    let a = token(&s, "svc", &[("grant_type", "")]).await;
    a.err(400, "invalid_request");
}

// ---------------------------------------------------------------------------------------
// password

#[tokio::test]
async fn password_grant_issues_access_and_refresh() {
    let s = server().await;
    let a = password(&s, "svc", "alice", "wonderland", None).await;
    let t = a.ok();
    assert_eq!(t["scope"], "read");
    assert_eq!(t["expires_in"], 900);
    assert_ne!(a.refresh(), a.access());
    let id = api(&s, a.access()).await.unwrap();
    assert_eq!(id["client_id"], "svc");
    assert_eq!(id["user"], "alice");
    assert_eq!(id["scope"], "read");
    // A refresh token is not an access token.
    assert_refused(api(&s, a.refresh()).await);

    // A client that may not refresh gets no refresh token.
    let cfg = format!(
        "{}\n[[clients]]\nid = \"norefresh\"\nsecret = \"norefresh-secret\"\n\
         grants = [\"password\"]\nscopes = [\"read\"]\n",
        config()
    );
    let s = TestServer::start(&cfg).await;
    let a = password(&s, "norefresh", "alice", "wonderland", None).await;
    assert!(a.ok().get("refresh_token").is_none(), "{}", a.json);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_the_same_invalid_grant() {
    let s = server().await;
    let wrong = password(&s, "svc", "alice", "not-wonderland", None).await;
    let unknown = password(&s, "svc", "mallory", "not-wonderland", None).await;
    wrong.err(400, "invalid_grant");
    unknown.err(400, "invalid_grant");
    assert_eq!(wrong.json, unknown.json);
    assert_eq!(wrong.json.to_string(), unknown.json.to_string());
    // Case matters in usernames.
    let a = password(&s, "svc", "Alice", "wonderland", None).await;
    assert_eq!(a.json, unknown.json);
}

#[tokio::test]
async fn password_grant_missing_parameters_are_invalid_request() {
    let s = server().await;
    let a = token(
        &s,
        "svc",
        &[("grant_type", "password"), ("password", "wonderland")],
    )
    .await;
    a.err(400, "invalid_request");
    let a = token(
        &s,
        "svc",
        &[("grant_type", "password"), ("username", "alice")],
    )
    .await;
    a.err(400, "invalid_request");
    let a = token(
        &s,
        "svc",
        &[
            ("grant_type", "password"),
            ("username", ""),
            ("password", "wonderland"),
        ],
    )
    .await;
    a.err(400, "invalid_request");
}

#[tokio::test]
async fn password_grant_respects_user_scopes() {
    let s = server().await;
    // bob may hold only "read".
    for scope in ["write", "read write", "admin"] {
        let a = password(&s, "svc", "bob", "builder", Some(scope)).await;
        a.err(400, "invalid_scope");
    }
    let a = password(&s, "svc", "bob", "builder", Some("read")).await;
    assert_eq!(a.ok()["scope"], "read");
    // Asking nothing gets at most "read", even from a client whose default is everything.
    let a = password(&s, "other", "bob", "builder", None).await;
    assert_eq!(a.ok()["scope"], "read");
    assert_eq!(api(&s, a.access()).await.unwrap()["scope"], "read");
    let a = password(&s, "svc", "bob", "builder", None).await;
    assert_eq!(a.ok()["scope"], "read");
    // alice is not restricted.
    let a = password(&s, "svc", "alice", "wonderland", Some("read write admin")).await;
    assert_eq!(a.ok()["scope"], "admin read write");
}

// ---------------------------------------------------------------------------------------
// refresh_token

#[tokio::test]
async fn refresh_rotates() {
    let s = server().await;
    let first = password(&s, "svc", "alice", "wonderland", Some("read write")).await;
    let r0 = first.refresh().to_string();
    let second = refresh(&s, "svc", &r0, None).await;
    let r1 = second.refresh().to_string();
    assert_ne!(r1, r0);
    assert_ne!(second.access(), first.access());
    assert_eq!(second.ok()["scope"], "read write");
    assert_eq!(second.ok()["expires_in"], 900);
    let id = api(&s, second.access()).await.unwrap();
    assert_eq!(
        (id["client_id"].as_str(), id["user"].as_str()),
        (Some("svc"), Some("alice"))
    );
    // The old refresh token is used up.
    refresh(&s, "svc", &r0, None)
        .await
        .err(400, "invalid_grant");
}

#[tokio::test]
async fn replayed_refresh_token_revokes_the_family() {
    let s = server().await;
    let a0 = password(&s, "svc", "alice", "wonderland", Some("read write")).await;
    let r0 = a0.refresh().to_string();
    let a1 = refresh(&s, "svc", &r0, None).await;
    let r1 = a1.refresh().to_string();
    let a2 = refresh(&s, "svc", &r1, None).await;
    let r2 = a2.refresh().to_string();
    let access2 = a2.access().to_string();
    assert!(api(&s, &access2).await.is_ok());

    // A token outside the family, for the same client and user, is a control.
    let unrelated = password(&s, "svc", "alice", "wonderland", None).await;

    // r0 was rotated twice ago; presenting it again is a replay.
    refresh(&s, "svc", &r0, None)
        .await
        .err(400, "invalid_grant");

    // The whole family is dead: the latest access token, the newest refresh token, and
    // everything before them.
    assert_refused(api(&s, &access2).await);
    assert_refused(api(&s, a1.access()).await);
    assert_refused(api(&s, a0.access()).await);
    refresh(&s, "svc", &r2, None)
        .await
        .err(400, "invalid_grant");
    refresh(&s, "svc", &r1, None)
        .await
        .err(400, "invalid_grant");

    // Other families are untouched.
    assert!(api(&s, unrelated.access()).await.is_ok());
    refresh(&s, "svc", unrelated.refresh(), None).await.ok();
}

#[tokio::test]
async fn refresh_scope_may_narrow() {
    let s = server().await;
    let a = password(&s, "svc", "alice", "wonderland", Some("read write")).await;
    let narrowed = refresh(&s, "svc", a.refresh(), Some("read")).await;
    assert_eq!(narrowed.ok()["scope"], "read");
    assert_eq!(api(&s, narrowed.access()).await.unwrap()["scope"], "read");
    // RFC 6749 6: the new refresh token's scope is identical to the one presented, so the
    // narrowing applies to that access token only.
    let again = refresh(&s, "svc", narrowed.refresh(), None).await;
    assert_eq!(again.ok()["scope"], "read write");
    let again = refresh(&s, "svc", again.refresh(), Some("write")).await;
    assert_eq!(again.ok()["scope"], "write");
}

#[tokio::test]
async fn refresh_scope_may_not_widen() {
    let s = server().await;
    let a = password(&s, "svc", "alice", "wonderland", Some("read")).await;
    let rt = a.refresh().to_string();
    // Within the client's scopes but beyond the grant; and beyond the client's too.
    for scope in ["read write", "write", "admin", "read delete"] {
        refresh(&s, "svc", &rt, Some(scope))
            .await
            .err(400, "invalid_scope");
    }
    // The refused requests did not use the token up.
    let b = refresh(&s, "svc", &rt, None).await;
    assert_eq!(b.ok()["scope"], "read");
}

#[tokio::test]
async fn refresh_without_scope_keeps_the_original() {
    let s = server().await;
    let a = password(&s, "svc", "alice", "wonderland", Some("admin write")).await;
    let b = refresh(&s, "svc", a.refresh(), None).await;
    assert_eq!(b.ok()["scope"], "admin write");
    assert_eq!(api(&s, b.access()).await.unwrap()["scope"], "admin write");
    let c = refresh(&s, "svc", b.refresh(), None).await;
    assert_eq!(c.ok()["scope"], "admin write");
}

#[tokio::test]
async fn refresh_token_of_another_client_is_refused_and_left_unconsumed() {
    let s = server().await;
    let a = password(&s, "svc", "alice", "wonderland", None).await;
    let rt = a.refresh().to_string();
    // `other` may use refresh_token, but this one is svc's (RFC 6749 10.4).
    refresh(&s, "other", &rt, None)
        .await
        .err(400, "invalid_grant");
    // The public client too.
    token(
        &s,
        "",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", "app"),
        ],
    )
    .await
    .err(400, "invalid_grant");
    // Not consumed, and the family was not revoked.
    assert!(api(&s, a.access()).await.is_ok());
    let b = refresh(&s, "svc", &rt, None).await;
    assert_eq!(b.ok()["scope"], "read");
    assert_eq!(api(&s, b.access()).await.unwrap()["user"], "alice");
}

#[tokio::test]
async fn refresh_with_something_else_is_invalid_grant() {
    let s = server().await;
    let a = password(&s, "svc", "alice", "wonderland", None).await;
    let cc = token(&s, "svc", &[("grant_type", "client_credentials")]).await;
    // An access token where a refresh token belongs.
    refresh(&s, "svc", a.access(), None)
        .await
        .err(400, "invalid_grant");
    refresh(&s, "svc", cc.access(), None)
        .await
        .err(400, "invalid_grant");
    // Garbage, and a well-formed-looking string with a flipped character.
    refresh(&s, "svc", "garbage", None)
        .await
        .err(400, "invalid_grant");
    let rt = a.refresh();
    let mut flipped: Vec<char> = rt.chars().collect();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == 'A' { 'B' } else { 'A' };
    let flipped: String = flipped.into_iter().collect();
    refresh(&s, "svc", &flipped, None)
        .await
        .err(400, "invalid_grant");
    // Missing is invalid_request.
    token(&s, "svc", &[("grant_type", "refresh_token")])
        .await
        .err(400, "invalid_request");
    // None of this hurt the real one.
    refresh(&s, "svc", rt, None).await.ok();
}

#[tokio::test]
async fn public_client_refreshes_with_client_id_alone() {
    let s = server().await;
    let a = token(
        &s,
        "",
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("username", "alice"),
            ("password", "wonderland"),
        ],
    )
    .await;
    let b = token(
        &s,
        "",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("refresh_token", a.refresh()),
        ],
    )
    .await;
    assert_eq!(b.ok()["scope"], "read write");
    assert_eq!(api(&s, b.access()).await.unwrap()["client_id"], "app");
}

// ---------------------------------------------------------------------------------------
// Extension grants

#[tokio::test]
async fn temporary_user_grant() {
    let s = server().await;
    let a = token(&s, "svc", &[("grant_type", "temporary_user")]).await;
    assert_eq!(a.ok()["scope"], "read");
    let rt = a.refresh().to_string();
    let id = api(&s, a.access()).await.unwrap();
    assert_eq!(id["client_id"], "svc");
    let user = id["user"].as_str().unwrap().to_string();
    assert!(user.starts_with("temporary:"), "{user}");
    assert!(user.len() > "temporary:".len());
    // Each grant is a new account.
    let b = token(&s, "svc", &[("grant_type", "temporary_user")]).await;
    let other_user = api(&s, b.access()).await.unwrap()["user"].clone();
    assert_ne!(other_user.as_str(), Some(user.as_str()));
    // Refreshing keeps the account.
    let c = refresh(&s, "svc", &rt, None).await;
    assert_eq!(api(&s, c.access()).await.unwrap()["user"], user.as_str());
}

#[tokio::test]
async fn anonymous_user_grant() {
    let s = server().await;
    let a = token(
        &s,
        "svc",
        &[("grant_type", "anonymous_user"), ("scope", "read write")],
    )
    .await;
    let t = a.ok();
    assert_eq!(t["scope"], "read write");
    assert!(t.get("refresh_token").is_none(), "{t}");
    let id = api(&s, a.access()).await.unwrap();
    assert_eq!(id["client_id"], "svc");
    let user = id["user"].as_str().unwrap().to_string();
    assert!(user.starts_with("anonymous:"), "{user}");
    assert!(user.len() > "anonymous:".len());
    let b = token(&s, "svc", &[("grant_type", "anonymous_user")]).await;
    assert_ne!(
        api(&s, b.access()).await.unwrap()["user"].as_str(),
        Some(user.as_str())
    );
    // Scope rules hold for extension grants too.
    token(
        &s,
        "svc",
        &[("grant_type", "anonymous_user"), ("scope", "delete")],
    )
    .await
    .err(400, "invalid_scope");
}

#[tokio::test]
async fn extension_grants_need_the_client_configured() {
    let s = server().await;
    for g in ["temporary_user", "anonymous_user"] {
        token(&s, "other", &[("grant_type", g)])
            .await
            .err(400, "unauthorized_client");
    }
}

// ---------------------------------------------------------------------------------------
// Concurrency (Kong 14358)

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_issuance_keeps_tokens_with_their_clients() {
    let s = Arc::new(server().await);
    let http = s.http.clone();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..500usize {
        let (id, secret) = if i % 2 == 0 {
            ("svc", "svc-secret")
        } else {
            ("other", "other-secret")
        };
        let http = http.clone();
        let url = s.url(TOKEN);
        set.spawn(async move {
            let r = http
                .post(url)
                .header("authorization", basic(id, secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            (id, v["access_token"].as_str().unwrap().to_string())
        });
    }
    let mut issued = Vec::new();
    while let Some(r) = set.join_next().await {
        issued.push(r.unwrap());
    }
    assert_eq!(issued.len(), 500);
    let distinct: HashSet<&str> = issued.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(distinct.len(), 500, "duplicate tokens issued");

    let mut set = tokio::task::JoinSet::new();
    for (id, t) in issued {
        let http = http.clone();
        let url = s.url("/api/whoami");
        set.spawn(async move {
            let r = http.get(url).bearer_auth(&t).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            (
                id,
                v["headers"]["x-oauth-client-id"].as_str().map(String::from),
            )
        });
    }
    let mut seen = 0;
    while let Some(r) = set.join_next().await {
        let (asked, got) = r.unwrap();
        assert_eq!(
            got.as_deref(),
            Some(asked),
            "a token landed with another client"
        );
        seen += 1;
    }
    assert_eq!(seen, 500);
}

// ---------------------------------------------------------------------------------------
// Expiry

#[tokio::test]
async fn access_tokens_expire() {
    let clock = Arc::new(ManualClock::starting_now());
    let s = TestServer::with_clock(&config_with_ttl("1s"), clock.clone()).await;
    let a = token(&s, "svc", &[("grant_type", "client_credentials")]).await;
    assert_eq!(a.ok()["expires_in"], 1);
    let id = api(&s, a.access()).await.unwrap();
    assert_eq!(id["client_id"], "svc");
    // Still within its second: the cache answers, by the engine's clock.
    clock.advance(Duration::from_millis(900));
    assert!(api(&s, a.access()).await.is_ok());
    clock.advance(Duration::from_millis(1200));
    assert_refused(api(&s, a.access()).await);
    // A fresh token works again: the edge, not the clock, was the limit.
    let b = token(&s, "svc", &[("grant_type", "client_credentials")]).await;
    assert!(api(&s, b.access()).await.is_ok());
}

#[tokio::test]
async fn refresh_tokens_expire() {
    let clock = Arc::new(ManualClock::starting_now());
    let s =
        TestServer::with_clock(&config_with_tokens("refresh_ttl = \"1s\""), clock.clone()).await;
    let a = password(&s, "svc", "alice", "wonderland", None).await;
    let b = password(&s, "svc", "alice", "wonderland", None).await;
    // Fresh, it rotates.
    let a2 = refresh(&s, "svc", a.refresh(), None).await;
    a2.ok();
    clock.advance(Duration::from_millis(2100));
    refresh(&s, "svc", b.refresh(), None)
        .await
        .err(400, "invalid_grant");
    refresh(&s, "svc", a2.refresh(), None)
        .await
        .err(400, "invalid_grant");
    // Access tokens keep their own, longer lifetime.
    assert!(api(&s, b.access()).await.is_ok());
}
