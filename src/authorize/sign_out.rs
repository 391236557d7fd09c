//! `GET` and `POST …/sign-out`: ending the sign-in session of this browser.
//!
//! `GET` shows who is signed in and a button; the `POST` (CSRF-checked, same origin) clears the
//! session cookie and remembers the session's id for as long as a session can live, so that a
//! copy of the cookie is refused afterwards by this instance. Other instances of a fleet
//! accept such a copy until it expires; a new password, removing the user or rotating the keys
//! ends the user's sessions everywhere.

use bytes::Bytes;
use http::{Method, Response, StatusCode};

use super::{html, Out};
use crate::endpoints::Request;
use crate::pages;

/// `GET` and `POST …/sign-out`.
pub(crate) async fn sign_out(req: Request<'_>) -> Response<Bytes> {
    let mut out = Out::new(&req);
    let resp = if req.head.method == Method::POST {
        post(&req, &mut out).await
    } else {
        get(&req, &mut out).await
    };
    out.finish(resp)
}

async fn get(req: &Request<'_>, out: &mut Out) -> Response<Bytes> {
    let Some(user) = out.session_user(req).await else {
        return not_signed_in();
    };
    let page = pages::SignOut {
        title: "Sign out".into(),
        user,
        action: req.head.uri.path().to_string(),
        csrf: out.csrf_token(req.edge),
    };
    html(StatusCode::OK, pages::sign_out(&page))
}

async fn post(req: &Request<'_>, out: &mut Out) -> Response<Bytes> {
    if let Some(r) = out.csrf_refusal(req) {
        return r;
    }
    let Some(session) = out.session(req).await else {
        return not_signed_in();
    };
    req.edge.pages().signed_out.insert(session.i, ());
    out.end_session = true;
    tracing::info!("signed out");
    html(
        StatusCode::OK,
        pages::done(&pages::Done {
            title: "Signed out".into(),
            message: "You are signed out. Applications you allowed keep the access you gave \
                      them until you revoke it there."
                .into(),
            error: None,
            error_description: None,
        }),
    )
}

fn not_signed_in() -> Response<Bytes> {
    html(
        StatusCode::OK,
        pages::done(&pages::Done {
            title: "Signed out".into(),
            message: "You are not signed in.".into(),
            error: None,
            error_description: None,
        }),
    )
}
