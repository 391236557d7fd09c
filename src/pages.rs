//! The built-in HTML pages: sign-in and consent for the authorization-code flow, user-code
//! entry and confirmation for the device flow (RFC 8628), sign-out, and a plain result page.
//!
//! Each page is a pure function from a plain data struct to a complete HTML5 document. There
//! is no JavaScript: every page is a form posted with `method="post"`, so it works in any
//! browser. Every interpolated value is HTML-escaped (the templates are [`maud`] markup, which
//! escapes everything that is not explicitly marked as pre-escaped; only the constant style
//! sheet is). No secret is ever rendered: the password field never carries a value.
//!
//! The pages carry a hidden `csrf` field; checking it, and setting security headers (for
//! example `Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline';
//! frame-ancestors 'none'`, `Cache-Control: no-store`), is the caller's job.

use maud::{html, Markup, PreEscaped, DOCTYPE};

/// The sign-in page of the authorization-code flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignIn {
    /// The document title and the page heading, e.g. "Sign in".
    pub title: String,
    /// The display name of the client the user is signing in to.
    pub client: String,
    /// The path the form posts to.
    pub action: String,
    /// The anti-CSRF token, posted back as `csrf`.
    pub csrf: String,
    /// The opaque ticket of the pending authorization request, posted back as `request`.
    pub request: String,
    /// A user name to prefill (after a failed attempt), if any.
    pub username: Option<String>,
    /// An error to show above the form (e.g. "Wrong user name or password."), if any.
    pub error: Option<String>,
}

/// The consent page: the signed-in user allows or denies a client the scopes it asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consent {
    /// The document title and the page heading, e.g. "Authorize access".
    pub title: String,
    /// The display name of the client asking for access.
    pub client: String,
    /// The name of the signed-in user.
    pub user: String,
    /// The scopes asked for, each with an optional human description.
    pub scopes: Vec<(String, Option<String>)>,
    /// The path the form posts to (with `decision=allow` or `decision=deny`).
    pub action: String,
    /// The anti-CSRF token, posted back as `csrf`.
    pub csrf: String,
    /// The opaque ticket of the pending authorization request, posted back as `request`.
    pub request: String,
}

/// The device-flow page where the user types the code shown on the device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceEntry {
    /// The document title and the page heading, e.g. "Connect a device".
    pub title: String,
    /// The path the form posts to (with `user_code`).
    pub action: String,
    /// The anti-CSRF token, posted back as `csrf`.
    pub csrf: String,
    /// A user code to prefill (from `verification_uri_complete`), if any.
    pub user_code: Option<String>,
    /// An error to show above the form (e.g. "That code is not valid."), if any.
    pub error: Option<String>,
}

/// The device-flow page where the signed-in user approves or denies one device's request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceConfirm {
    /// The document title and the page heading, e.g. "Connect a device".
    pub title: String,
    /// The display name of the client the device runs.
    pub client: String,
    /// The name of the signed-in user.
    pub user: String,
    /// The user code being approved, shown so the user can compare it with the device's.
    pub user_code: String,
    /// The scopes asked for, each with an optional human description.
    pub scopes: Vec<(String, Option<String>)>,
    /// The path the form posts to (with `decision=allow` or `decision=deny`).
    pub action: String,
    /// The anti-CSRF token, posted back as `csrf`.
    pub csrf: String,
}

/// A result page: a title and a message, and for an error page the OAuth2 error code and
/// description. It never redirects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// The document title and the page heading, e.g. "Device connected".
    pub title: String,
    /// The message, e.g. "You can return to your device."
    pub message: String,
    /// An OAuth2 error code (e.g. `invalid_request`) for an error page.
    pub error: Option<String>,
    /// The error's human-readable description.
    pub error_description: Option<String>,
}

/// The sign-in page: user name and password, posted with the `csrf` and `request` fields.
pub fn sign_in(page: &SignIn) -> String {
    let focus_password = page.username.as_deref().is_some_and(|u| !u.is_empty());
    let body = html! {
        p.lede { "Sign in to continue to " strong { (page.client) } }
        (error_box(page.error.as_deref()))
        form method="post" action=(page.action) {
            (hidden("csrf", &page.csrf))
            (hidden("request", &page.request))
            div.field {
                label for="username" { "User name" }
                input #username type="text" name="username" value=[page.username.as_deref()]
                    autocomplete="username" autocapitalize="none" spellcheck="false"
                    required autofocus[!focus_password]
                    aria-invalid=[page.error.as_ref().map(|_| "true")]
                    aria-describedby=[page.error.as_ref().map(|_| "error")];
            }
            div.field {
                label for="password" { "Password" }
                input #password type="password" name="password"
                    autocomplete="current-password" required autofocus[focus_password]
                    aria-invalid=[page.error.as_ref().map(|_| "true")]
                    aria-describedby=[page.error.as_ref().map(|_| "error")];
            }
            div.actions {
                button.primary type="submit" { "Sign in" }
            }
        }
    };
    document(&page.title, body)
}

/// The consent page: the client, the signed-in user, the scopes, and one form with an
/// Allow and a Deny button (`decision=allow` / `decision=deny`).
pub fn consent(page: &Consent) -> String {
    let body = html! {
        p.lede { strong { (page.client) } " wants to access your account" }
        (signed_in_as(&page.user))
        (scope_list(&page.scopes))
        form method="post" action=(page.action) {
            (hidden("csrf", &page.csrf))
            (hidden("request", &page.request))
            (decision_buttons())
        }
    };
    document(&page.title, body)
}

/// The device-flow code entry page: one `user_code` field, posted with `csrf`.
pub fn device_entry(page: &DeviceEntry) -> String {
    let described_by = if page.error.is_some() {
        "user_code-hint error"
    } else {
        "user_code-hint"
    };
    let body = html! {
        p.lede { "Enter the code shown on your device." }
        (error_box(page.error.as_deref()))
        form method="post" action=(page.action) {
            (hidden("csrf", &page.csrf))
            div.field {
                label for="user_code" { "Code" }
                input #user_code.code type="text" name="user_code"
                    value=[page.user_code.as_deref()]
                    autocomplete="one-time-code" autocapitalize="characters"
                    spellcheck="false" autocorrect="off" placeholder="XXXX-XXXX"
                    required autofocus
                    aria-describedby=(described_by)
                    aria-invalid=[page.error.as_ref().map(|_| "true")];
                p #user_code-hint.hint { "The code looks like XXXX-XXXX." }
            }
            div.actions {
                button.primary type="submit" { "Continue" }
            }
        }
    };
    document(&page.title, body)
}

/// The device-flow confirmation page: the client, the user code to compare with the
/// device's screen, the scopes, the signed-in user, and Allow/Deny buttons; posted with
/// `csrf` and `user_code`.
pub fn device_confirm(page: &DeviceConfirm) -> String {
    let body = html! {
        p.lede { strong { (page.client) } " wants to access your account from a device." }
        p { "Check that this code matches the one on your device:" }
        p.usercode { (page.user_code) }
        (signed_in_as(&page.user))
        (scope_list(&page.scopes))
        form method="post" action=(page.action) {
            (hidden("csrf", &page.csrf))
            (hidden("user_code", &page.user_code))
            (decision_buttons())
        }
    };
    document(&page.title, body)
}

/// The sign-out page: who is signed in, and one button (`POST`, with `csrf`).
#[derive(Debug, Clone)]
pub struct SignOut {
    /// The page title.
    pub title: String,
    /// The signed-in user.
    pub user: String,
    /// Where the form posts to.
    pub action: String,
    /// The CSRF form token.
    pub csrf: String,
}

/// The sign-out page.
pub fn sign_out(page: &SignOut) -> String {
    let body = html! {
        (signed_in_as(&page.user))
        form method="post" action=(page.action) {
            (hidden("csrf", &page.csrf))
            div.actions {
                button.primary type="submit" { "Sign out" }
            }
        }
    };
    document(&page.title, body)
}

/// A result page: title and message; an error page also shows the error code and
/// description. It has no redirect, no refresh and no link out.
pub fn done(page: &Done) -> String {
    let is_error = page.error.is_some();
    let body = html! {
        p.lede { (page.message) }
        @if is_error {
            div.alert role="alert" {
                @if let Some(error) = &page.error {
                    p { "Error: " code { (error) } }
                }
                @if let Some(description) = &page.error_description {
                    p { (description) }
                }
            }
        } @else if let Some(description) = &page.error_description {
            p { (description) }
        }
    };
    document(&page.title, body)
}

// ---------------------------------------------------------------------------------------
// Pieces

/// The whole document around a page's body: head, style, `<main>` card and the `<h1>`.
fn document(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                meta name="referrer" content="same-origin";
                meta name="robots" content="noindex, nofollow";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main.card {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
    .into_string()
}

fn hidden(name: &str, value: &str) -> Markup {
    html! { input type="hidden" name=(name) value=(value); }
}

fn error_box(error: Option<&str>) -> Markup {
    html! {
        @if let Some(error) = error {
            p #error.alert role="alert" { (error) }
        }
    }
}

fn signed_in_as(user: &str) -> Markup {
    html! { p.user { "Signed in as " strong { (user) } } }
}

fn scope_list(scopes: &[(String, Option<String>)]) -> Markup {
    html! {
        @if scopes.is_empty() {
            p { "It asks for no specific permissions." }
        } @else {
            h2 { "It will be able to:" }
            ul.scopes {
                @for (scope, description) in scopes {
                    li {
                        @if let Some(description) = description {
                            span.desc { (description) }
                            " "
                            code { (scope) }
                        } @else {
                            code { (scope) }
                        }
                    }
                }
            }
        }
    }
}

/// Deny first, then Allow: the pages have no text field, so neither is an implicit default
/// on Enter; visually Allow is the primary button on the right.
fn decision_buttons() -> Markup {
    html! {
        div.actions {
            button.secondary type="submit" name="decision" value="deny" { "Deny" }
            button.primary type="submit" name="decision" value="allow" { "Allow" }
        }
    }
}

/// The one style sheet. Colours meet WCAG AA contrast in both schemes; focus is always
/// visible.
const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#f3f4f6;--card:#fff;--fg:#111827;--muted:#4b5563;\
--border:#6b7280;--line:#d1d5db;--primary:#1d4ed8;--primary-fg:#fff;--primary-hover:#1e40af;\
--focus:#1d4ed8;--err-bg:#fef2f2;--err-fg:#991b1b;--err-border:#fca5a5;--code-bg:#eef2f7}\
@media (prefers-color-scheme:dark){:root{--bg:#0f172a;--card:#1e293b;--fg:#f1f5f9;\
--muted:#cbd5e1;--border:#94a3b8;--line:#334155;--primary:#2563eb;--primary-fg:#fff;--primary-hover:#1d4ed8;\
--focus:#93c5fd;--err-bg:#450a0a;--err-fg:#fecaca;--err-border:#b91c1c;--code-bg:#0f172a}}\
*,*::before,*::after{box-sizing:border-box}\
html{-webkit-text-size-adjust:100%}\
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;\
padding:1.5rem 1rem;background:var(--bg);color:var(--fg);line-height:1.5;\
font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,\
\"Noto Sans\",sans-serif}\
.card{width:100%;max-width:26rem;background:var(--card);border:1px solid var(--line);\
border-radius:12px;padding:2rem 1.75rem;box-shadow:0 10px 30px rgba(0,0,0,.08)}\
.card>:last-child{margin-bottom:0}\
h1{font-size:1.5rem;line-height:1.25;margin:0 0 .5rem}\
h2{font-size:1rem;margin:1.25rem 0 .5rem}\
p{margin:0 0 1rem}\
.lede{font-size:1.0625rem}\
.user,.hint{color:var(--muted);font-size:.9375rem}\
.hint{margin:.375rem 0 0}\
.field{margin:0 0 1rem}\
label{display:block;font-weight:600;margin:0 0 .375rem}\
input[type=text],input[type=password]{display:block;width:100%;font:inherit;\
padding:.625rem .75rem;color:var(--fg);background:var(--card);\
border:1px solid var(--border);border-radius:8px}\
input.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;\
letter-spacing:.15em;text-transform:uppercase;font-size:1.25rem}\
input.code::placeholder{letter-spacing:.15em}\
.actions{display:flex;gap:.75rem;justify-content:flex-end;margin-top:1.5rem}\
button{font:inherit;font-weight:600;padding:.625rem 1.25rem;border-radius:8px;\
cursor:pointer;border:1px solid var(--primary);min-height:2.75rem}\
button.primary{background:var(--primary);color:var(--primary-fg)}\
button.primary:hover{background:var(--primary-hover);border-color:var(--primary-hover)}\
button.secondary{background:transparent;color:var(--fg);border-color:var(--border)}\
button.secondary:hover{background:var(--bg)}\
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}\
input:focus-visible{outline-offset:0}\
.alert{background:var(--err-bg);color:var(--err-fg);border:1px solid var(--err-border);\
border-radius:8px;padding:.75rem 1rem;margin:0 0 1rem}\
.alert p{margin:0}.alert p+p{margin-top:.25rem}\
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.875em;\
background:var(--code-bg);padding:.1em .35em;border-radius:4px;overflow-wrap:anywhere}\
.scopes{list-style:none;margin:0 0 1rem;padding:0;border-top:1px solid var(--line)}\
.scopes li{padding:.625rem 0;border-bottom:1px solid var(--line)}\
.scopes .desc{display:block}\
.usercode{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;\
font-size:1.75rem;font-weight:700;letter-spacing:.15em;text-align:center;\
background:var(--code-bg);border:1px dashed var(--border);border-radius:8px;\
padding:.5rem;overflow-wrap:anywhere}\
strong{overflow-wrap:anywhere}\
@media (max-width:30rem){body{align-items:flex-start;padding:1rem .75rem}\
.card{padding:1.5rem 1.25rem;border-radius:10px}\
.actions{flex-direction:column-reverse}.actions button{width:100%}}\
@media (forced-colors:active){button,input,.card,.alert{border:1px solid CanvasText}}\
";

#[cfg(test)]
mod tests {
    use super::*;

    const EVIL: &str = "<script>alert(\"x\")</script>&'";

    fn scopes() -> Vec<(String, Option<String>)> {
        vec![
            ("profile".into(), Some("See your profile".into())),
            ("orders:write".into(), None),
        ]
    }

    fn sign_in_page() -> SignIn {
        SignIn {
            title: "Sign in".into(),
            client: "Acme App".into(),
            action: "/oauth2/sign-in".into(),
            csrf: "csrf-token-1".into(),
            request: "ticket-1".into(),
            username: None,
            error: None,
        }
    }

    fn consent_page() -> Consent {
        Consent {
            title: "Authorize access".into(),
            client: "Acme App".into(),
            user: "alice".into(),
            scopes: scopes(),
            action: "/oauth2/consent".into(),
            csrf: "csrf-token-2".into(),
            request: "ticket-2".into(),
        }
    }

    fn entry_page() -> DeviceEntry {
        DeviceEntry {
            title: "Connect a device".into(),
            action: "/oauth2/device".into(),
            csrf: "csrf-token-3".into(),
            user_code: None,
            error: None,
        }
    }

    fn confirm_page() -> DeviceConfirm {
        DeviceConfirm {
            title: "Connect a device".into(),
            client: "Acme TV".into(),
            user: "alice".into(),
            user_code: "WDJB-MJHT".into(),
            scopes: scopes(),
            action: "/oauth2/device/confirm".into(),
            csrf: "csrf-token-4".into(),
        }
    }

    /// What every page must have: HTML5 skeleton, one `<h1>`, `<main>`, no script.
    fn assert_document(html: &str) {
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.contains("<html lang=\"en\">"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("<meta name=\"viewport\""));
        assert!(html.contains("<style>"));
        assert_eq!(html.matches("<h1>").count(), 1, "{html}");
        assert_eq!(html.matches("<main").count(), 1);
        assert!(!html.to_ascii_lowercase().contains("<script"), "{html}");
        assert!(!html.contains("http-equiv"), "no refresh: {html}");
        assert!(html.ends_with("</html>"));
    }

    fn assert_hidden(html: &str, name: &str, value: &str) {
        let field = format!("<input type=\"hidden\" name=\"{name}\" value=\"{value}\">");
        assert!(html.contains(&field), "missing {field} in {html}");
    }

    fn assert_labelled(html: &str, id: &str) {
        assert!(html.contains(&format!("<label for=\"{id}\">")), "{html}");
        assert!(html.contains(&format!("id=\"{id}\"")), "{html}");
    }

    #[test]
    fn sign_in_has_fields_labels_and_hidden_values() {
        let html = sign_in(&sign_in_page());
        assert_document(&html);
        assert!(html.contains("<title>Sign in</title>"));
        assert!(html.contains("Sign in to continue to <strong>Acme App</strong>"));
        assert!(html.contains("<form method=\"post\" action=\"/oauth2/sign-in\">"));
        assert_hidden(&html, "csrf", "csrf-token-1");
        assert_hidden(&html, "request", "ticket-1");
        assert_labelled(&html, "username");
        assert_labelled(&html, "password");
        assert!(html.contains("autocomplete=\"username\""));
        assert!(html.contains("autocomplete=\"current-password\""));
        assert!(html.contains(">Sign in</button>"));
        assert!(!html.contains("role=\"alert\""));
    }

    #[test]
    fn sign_in_password_never_has_a_value() {
        let mut page = sign_in_page();
        page.username = Some("alice".into());
        page.error = Some("Wrong user name or password.".into());
        let html = sign_in(&page);
        let start = html.find("id=\"password\"").unwrap();
        let tag = &html[html[..start].rfind('<').unwrap()..];
        let tag = &tag[..tag.find('>').unwrap()];
        assert!(!tag.contains("value"), "{tag}");
        assert!(html.contains("value=\"alice\""));
        assert!(html.contains("role=\"alert\">Wrong user name or password.</p>"));
    }

    #[test]
    fn consent_has_one_form_with_both_decisions() {
        let html = consent(&consent_page());
        assert_document(&html);
        assert!(html.contains("<strong>Acme App</strong> wants to access your account"));
        assert!(html.contains("Signed in as <strong>alice</strong>"));
        assert_eq!(html.matches("<form").count(), 1);
        assert!(html.contains("action=\"/oauth2/consent\""));
        assert_hidden(&html, "csrf", "csrf-token-2");
        assert_hidden(&html, "request", "ticket-2");
        assert!(html.contains("name=\"decision\" value=\"allow\">Allow</button>"));
        assert!(html.contains("name=\"decision\" value=\"deny\">Deny</button>"));
        assert!(html.contains("See your profile"));
        assert!(html.contains("<code>profile</code>"));
        assert!(html.contains("<code>orders:write</code>"));
    }

    #[test]
    fn device_entry_has_code_field() {
        let mut page = entry_page();
        let html = device_entry(&page);
        assert_document(&html);
        assert_hidden(&html, "csrf", "csrf-token-3");
        assert_labelled(&html, "user_code");
        for attr in [
            "name=\"user_code\"",
            "autocomplete=\"one-time-code\"",
            "autocapitalize=\"characters\"",
            "spellcheck=\"false\"",
        ] {
            assert!(html.contains(attr), "{attr}");
        }
        assert!(html.contains("XXXX-XXXX"));
        assert!(!html.contains("role=\"alert\""));

        page.user_code = Some("WDJB-MJHT".into());
        page.error = Some("That code is not valid.".into());
        let html = device_entry(&page);
        assert!(html.contains("value=\"WDJB-MJHT\""));
        assert!(html.contains("role=\"alert\">That code is not valid.</p>"));
    }

    #[test]
    fn device_confirm_shows_code_and_posts_it() {
        let html = device_confirm(&confirm_page());
        assert_document(&html);
        assert!(html.contains("<strong>Acme TV</strong>"));
        assert!(html.contains(">WDJB-MJHT</p>"));
        assert!(html.contains("Signed in as <strong>alice</strong>"));
        assert_hidden(&html, "csrf", "csrf-token-4");
        assert_hidden(&html, "user_code", "WDJB-MJHT");
        assert_eq!(html.matches("<form").count(), 1);
        assert!(html.contains("value=\"allow\">Allow</button>"));
        assert!(html.contains("value=\"deny\">Deny</button>"));
        assert!(html.contains("<code>orders:write</code>"));
    }

    #[test]
    fn done_pages() {
        let html = done(&Done {
            title: "Device connected".into(),
            message: "You can return to your device.".into(),
            error: None,
            error_description: None,
        });
        assert_document(&html);
        assert!(html.contains("<h1>Device connected</h1>"));
        assert!(!html.contains("role=\"alert\""));
        assert!(!html.contains("<form"));

        let html = done(&Done {
            title: "Something went wrong".into(),
            message: "The request could not be completed.".into(),
            error: Some("invalid_request".into()),
            error_description: Some("redirect_uri is not registered".into()),
        });
        assert_document(&html);
        assert!(html.contains("role=\"alert\""));
        assert!(html.contains("<code>invalid_request</code>"));
        assert!(html.contains("redirect_uri is not registered"));
    }

    /// Every interpolated value, in text and in attributes, comes out escaped.
    #[test]
    fn everything_is_escaped() {
        const ESCAPED: &str = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;'";
        let evil = || EVIL.to_string();
        let evil_scopes = || vec![(evil(), Some(evil())), (evil(), None)];
        let pages = [
            sign_in(&SignIn {
                title: evil(),
                client: evil(),
                action: evil(),
                csrf: evil(),
                request: evil(),
                username: Some(evil()),
                error: Some(evil()),
            }),
            consent(&Consent {
                title: evil(),
                client: evil(),
                user: evil(),
                scopes: evil_scopes(),
                action: evil(),
                csrf: evil(),
                request: evil(),
            }),
            device_entry(&DeviceEntry {
                title: evil(),
                action: evil(),
                csrf: evil(),
                user_code: Some(evil()),
                error: Some(evil()),
            }),
            device_confirm(&DeviceConfirm {
                title: evil(),
                client: evil(),
                user: evil(),
                user_code: evil(),
                scopes: evil_scopes(),
                action: evil(),
                csrf: evil(),
            }),
            done(&Done {
                title: evil(),
                message: evil(),
                error: Some(evil()),
                error_description: Some(evil()),
            }),
        ];
        for html in &pages {
            assert!(!html.contains("<script"), "{html}");
            assert!(!html.contains("alert(\"x\")"), "{html}");
            assert!(html.contains(ESCAPED), "{html}");
        }
        // Each field is present, escaped, as many times as it was interpolated.
        assert_eq!(pages[0].matches(ESCAPED).count(), 8, "{}", pages[0]);
        assert_eq!(pages[1].matches(ESCAPED).count(), 10, "{}", pages[1]);
    }

    #[test]
    fn client_name_with_script_is_escaped() {
        let mut page = sign_in_page();
        page.client = "<script>alert(1)</script>".into();
        let html = sign_in(&page);
        assert!(html.contains("<strong>&lt;script&gt;alert(1)&lt;/script&gt;</strong>"));
        assert!(!html.contains("<script>"));
    }
}
