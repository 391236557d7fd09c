//! Route profiles: which paths are OAuth2 endpoints, which client authentication each
//! accepts, and how answers are worded.
//!
//! A profile is mounted at a base path. `rfc` speaks RFC 6749/7009/7662/8414; the seed
//! systems' profiles reproduce what their clients already expect.

mod challenge;
mod ibm;
mod kustvakt;
mod npr;
mod rfc;

pub(crate) use challenge::{basic_first as basic_challenge_first, settle as settle_challenges};
pub(crate) use npr::error as npr_error;
pub(crate) use rfc::decorate as rfc_decorate;
pub(crate) use rfc::error as rfc_error;

use bytes::Bytes;
use http::Response;

use crate::config::{AuthMethod, ProfileConfig, ProfileKind};
use crate::error::OAuthError;

/// The endpoints the edge answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointKind {
    /// `POST …/token`.
    Token,
    /// `POST …/revoke` (RFC 7009).
    Revoke,
    /// `POST …/introspect` (RFC 7662).
    Introspect,
    /// `GET /.well-known/oauth-authorization-server` (RFC 8414).
    Metadata,
    /// `GET …/authorize`, and the sign-in and consent forms it shows (RFC 6749 4.1).
    Authorize,
    /// `POST …/device_authorization` (RFC 8628 3.1).
    DeviceAuthorization,
    /// `GET`/`POST …/device`: the page where a user enters a device's code (RFC 8628 3.3).
    DeviceVerification,
    /// `GET`/`POST …/sign-out`: ends the browser's sign-in session.
    SignOut,
}

impl EndpointKind {
    /// A short name for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            EndpointKind::Token => "token",
            EndpointKind::Revoke => "revoke",
            EndpointKind::Introspect => "introspect",
            EndpointKind::Metadata => "metadata",
            EndpointKind::Authorize => "authorize",
            EndpointKind::DeviceAuthorization => "device_authorization",
            EndpointKind::DeviceVerification => "device",
            EndpointKind::SignOut => "sign_out",
        }
    }

    /// Pages people look at (HTML, `GET` and form `POST`), rather than client endpoints.
    pub const fn is_page(self) -> bool {
        matches!(
            self,
            EndpointKind::Authorize | EndpointKind::DeviceVerification | EndpointKind::SignOut
        )
    }
}

/// How the authorization flow (`/authorize`) speaks in a profile: how it refuses a request
/// and how an error goes back to the client. Carried through the flow's pages with the
/// request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AuthorizeDialect {
    /// RFC 6749 4.1.2.1 (and RFC 9207's `iss`).
    Rfc,
    /// NPR One: errors before the redirect are JSON; after it, `error` and `message`, a denial
    /// being `error=denied`.
    Npr,
}

impl AuthorizeDialect {
    /// Whether a request refused before its client and `redirect_uri` are known good is
    /// answered as JSON (NPR: "this endpoint will return the errors encoded as JSON objects
    /// (along with the corresponding HTTP status code – usually 400)") rather than a page.
    pub fn refuses_as_json(self) -> bool {
        self == AuthorizeDialect::Npr
    }

    /// The refusal of a `redirect_uri` the client does not have. NPR answers it as bad client
    /// credentials (401).
    pub fn unregistered_redirect(self) -> OAuthError {
        match self {
            AuthorizeDialect::Npr => {
                OAuthError::invalid_client("redirect_uri does not match the client's")
            }
            AuthorizeDialect::Rfc => {
                OAuthError::invalid_request("redirect_uri is not registered for this client")
            }
        }
    }

    /// The query parameters that carry `e` back to the client: `error`,
    /// `error_description`, `state`, `iss`; in NPR's words `error`, `message`, `state`.
    pub fn error_query<'a>(
        self,
        e: &'a OAuthError,
        state: Option<&'a str>,
        issuer: Option<&'a str>,
    ) -> Vec<(&'static str, &'a str)> {
        let mut q = Vec::with_capacity(4);
        match self {
            AuthorizeDialect::Npr if e.code == crate::error::ErrorCode::AccessDenied => {
                q.push(("error", "denied"));
                q.push((
                    "message",
                    "The user has denied the login and access request",
                ));
            }
            AuthorizeDialect::Npr => {
                q.push(("error", e.code.as_str()));
                q.push(("message", &*e.description));
            }
            AuthorizeDialect::Rfc => {
                q.push(("error", e.code.as_str()));
                q.push(("error_description", &*e.description));
            }
        }
        if let Some(s) = state {
            q.push(("state", s));
        }
        if let (AuthorizeDialect::Rfc, Some(iss)) = (self, issuer) {
            q.push(("iss", iss));
        }
        q
    }
}

/// A mounted profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Which profile.
    pub kind: ProfileKind,
    /// Its base path.
    pub base: String,
}

impl Profile {
    /// From its config table.
    pub fn from_config(c: &ProfileConfig) -> Self {
        Profile {
            kind: c.kind,
            base: if c.base == "/" {
                String::new()
            } else {
                c.base.clone()
            },
        }
    }

    /// The endpoint at `path`, if this profile has one there.
    pub fn endpoint(&self, path: &str) -> Option<EndpointKind> {
        let rest = path.strip_prefix(self.base.as_str())?;
        self.routes()
            .iter()
            .find(|(p, _)| *p == rest)
            .map(|(_, k)| *k)
    }

    /// The profile's paths below its base.
    pub fn routes(&self) -> &'static [(&'static str, EndpointKind)] {
        match self.kind {
            ProfileKind::Rfc => rfc::ROUTES,
            ProfileKind::Npr => npr::ROUTES,
            ProfileKind::Ibm => ibm::ROUTES,
            ProfileKind::Kustvakt => kustvakt::ROUTES,
        }
    }

    /// The full path of `kind` under this profile.
    pub fn path_of(&self, kind: EndpointKind) -> Option<String> {
        self.routes()
            .iter()
            .find(|(_, k)| *k == kind)
            .map(|(p, _)| format!("{}{p}", self.base))
    }

    /// The client authentication methods `kind` accepts under this profile.
    pub fn auth_methods(&self, kind: EndpointKind) -> &'static [AuthMethod] {
        match self.kind {
            ProfileKind::Rfc => rfc::auth_methods(kind),
            ProfileKind::Npr => npr::auth_methods(kind),
            ProfileKind::Ibm => ibm::auth_methods(kind),
            ProfileKind::Kustvakt => kustvakt::auth_methods(kind),
        }
    }

    /// Whether credentials may come in the query string (IBM API Connect does this).
    pub fn query_credentials(&self) -> bool {
        self.kind == ProfileKind::Ibm
    }

    /// The name of the revocation hint parameter.
    pub fn hint_param(&self) -> &'static str {
        match self.kind {
            ProfileKind::Kustvakt => "token_type",
            _ => "token_type_hint",
        }
    }

    /// How the profile's authorization pages speak.
    pub fn authorize_dialect(&self) -> AuthorizeDialect {
        match self.kind {
            ProfileKind::Npr => AuthorizeDialect::Npr,
            _ => AuthorizeDialect::Rfc,
        }
    }

    /// Renders an error of the endpoint `kind` in the profile's dialect. A 401 carries one
    /// `WWW-Authenticate` challenge per HTTP scheme the endpoint accepts; where it accepts
    /// none, the answer is a 400 instead (see `challenge.rs`).
    pub fn error(&self, kind: EndpointKind, e: &OAuthError) -> Response<Bytes> {
        let mut resp = match self.kind {
            ProfileKind::Rfc | ProfileKind::Kustvakt => rfc::error(e),
            ProfileKind::Npr => npr::error(e),
            ProfileKind::Ibm => ibm::error(e),
        };
        challenge::settle(&mut resp, self.auth_methods(kind), e);
        resp
    }

    /// The answer to a successful revocation.
    pub fn revoked(&self) -> Response<Bytes> {
        match self.kind {
            ProfileKind::Ibm => ibm::revoked(),
            _ => crate::endpoints::json(http::StatusCode::OK, Bytes::new()),
        }
    }
}
