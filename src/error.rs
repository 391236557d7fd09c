//! OAuth2 errors (RFC 6749 5.2, RFC 7009 2.2.1, RFC 8628 3.5) as values.
//!
//! Endpoints return [`OAuthError`]; the profile's dialect renders it. Descriptions are fixed
//! strings chosen here: nothing the client sent is ever echoed back.

use std::borrow::Cow;

use http::StatusCode;

/// The `error` codes of the OAuth2 family of RFCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// RFC 6749 5.2.
    InvalidRequest,
    /// RFC 6749 5.2.
    InvalidClient,
    /// RFC 6749 5.2.
    InvalidGrant,
    /// RFC 6749 5.2.
    UnauthorizedClient,
    /// RFC 6749 5.2.
    UnsupportedGrantType,
    /// RFC 6749 5.2.
    InvalidScope,
    /// RFC 7009 2.2.1.
    UnsupportedTokenType,
    /// RFC 6749 4.1.2.1.
    AccessDenied,
    /// RFC 6749 4.1.2.1.
    UnsupportedResponseType,
    /// RFC 6749 4.1.2.1; used with 500.
    ServerError,
    /// RFC 6749 4.1.2.1; used with 503 and `Retry-After`.
    TemporarilyUnavailable,
    /// RFC 8628 3.5.
    AuthorizationPending,
    /// RFC 8628 3.5.
    SlowDown,
    /// RFC 8628 3.5.
    ExpiredToken,
}

impl ErrorCode {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
        }
    }

    /// The status RFC 6749 5.2 implies: 401 for `invalid_client`, 500/503 for server trouble,
    /// 400 otherwise.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The HTTP authentication scheme of the credentials an error refused.
///
/// The answer's `WWW-Authenticate` does not repeat it: a 401 names every scheme the endpoint
/// accepts (see [`crate::profiles::Profile::error`]). It tells the Bearer challenge whether a
/// token was sent (then `error="invalid_token"`, RFC 6750 3.1) or could not be read
/// (`error="invalid_request"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic.
    Basic,
    /// A Bearer token.
    Bearer,
}

/// An OAuth2 error response, before a dialect renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The `error` code.
    pub code: ErrorCode,
    /// The `error_description`: a fixed text, never client input.
    pub description: Cow<'static, str>,
    /// The status when it differs from [`ErrorCode::status`] (405, 413, 415, 429, …).
    pub status: Option<StatusCode>,
    /// The scheme of the refused credentials, if they came in an HTTP scheme (see
    /// [`Challenge`]).
    pub challenge: Option<Challenge>,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u32>,
    /// Why client authentication failed, for the metrics, where the code alone does not
    /// tell: set where the error is made.
    pub failure: Option<crate::metrics::AuthFailure>,
}

impl OAuthError {
    /// An error with the code's default status.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            status: None,
            challenge: None,
            retry_after: None,
            failure: None,
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_client`, the one answer for every client authentication failure.
    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_scope`.
    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    /// `unauthorized_client`.
    pub fn unauthorized_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, description)
    }

    /// 503 `temporarily_unavailable` with `Retry-After`: the store could not be reached, so
    /// nothing was decided and nothing was written.
    pub fn unavailable() -> Self {
        OAuthError {
            retry_after: Some(1),
            ..Self::new(
                ErrorCode::TemporarilyUnavailable,
                "the authorization store is unavailable; retry later",
            )
        }
    }

    /// 503 `temporarily_unavailable` with `Retry-After`: the password checks are at capacity
    /// ([`crate::passwords`]), so this one was not run.
    pub fn busy() -> Self {
        tracing::warn!("password checks at capacity; a check was turned away");
        OAuthError {
            retry_after: Some(1),
            ..Self::new(
                ErrorCode::TemporarilyUnavailable,
                "too many password checks in progress; retry later",
            )
        }
    }

    /// Records why client authentication failed (see [`OAuthError::failure`]).
    pub fn with_failure(mut self, failure: crate::metrics::AuthFailure) -> Self {
        self.failure = Some(failure);
        self
    }

    /// Sets the status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets `Retry-After`, in seconds.
    pub fn with_retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Records the scheme of the refused credentials.
    pub fn with_challenge(mut self, challenge: Option<Challenge>) -> Self {
        self.challenge = challenge;
        self
    }

    /// The status to answer with.
    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| self.code.status())
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        if matches!(e, crate::store::StoreError::Busy) {
            return OAuthError::busy();
        }
        tracing::error!(error = %e, "store failure");
        OAuthError::unavailable()
    }
}

impl From<crate::passwords::Busy> for OAuthError {
    fn from(_: crate::passwords::Busy) -> Self {
        OAuthError::busy()
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}
