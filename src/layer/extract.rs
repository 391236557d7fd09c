use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use super::service::Admitted;
use crate::admission::Identity;

/// Why [`Identity`] could not be extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityRejection {
    /// The request did not pass through [`OAuthEdgeLayer`](super::OAuthEdgeLayer): a
    /// wiring mistake, answered 500 with a message that says so.
    MissingLayer,
    /// The route requires nothing, so the caller has no identity, and none could be had: the
    /// layer reads no credentials there. A wiring mistake too (require something of the route,
    /// or take `Option<Identity>`), answered 500 with a message that says so; a 401 would ask
    /// the client for credentials that nothing on this route reads.
    Anonymous,
}

impl IntoResponse for IdentityRejection {
    fn into_response(self) -> Response {
        match self {
            IdentityRejection::MissingLayer => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Identity extractor used on a route without OAuthEdgeLayer; add \
                 `.layer(OAuthEdgeLayer::new(edge))` to the router",
            )
                .into_response(),
            IdentityRejection::Anonymous => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Identity extractor used on a route that requires nothing (require = \"none\"), \
                 where callers have no identity; require something of the route, or take \
                 Option<Identity>",
            )
                .into_response(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = IdentityRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(id) = parts.extensions.get::<Identity>() {
            return Ok(id.clone());
        }
        if parts.extensions.get::<Admitted>().is_none() {
            return Err(IdentityRejection::MissingLayer);
        }
        Err(IdentityRejection::Anonymous)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Identity {
    type Rejection = IdentityRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        if let Some(id) = parts.extensions.get::<Identity>() {
            return Ok(Some(id.clone()));
        }
        if parts.extensions.get::<Admitted>().is_none() {
            return Err(IdentityRejection::MissingLayer);
        }
        Ok(None)
    }
}
