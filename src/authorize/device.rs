//! The device verification page (RFC 8628 3.3) and its user codes.

use super::*;

/// `GET` and `POST …/device`.
pub(crate) async fn device(req: Request<'_>) -> Response<Bytes> {
    let mut out = Out::new(&req);
    let resp = if req.head.method == Method::POST {
        device_post(&req, &mut out).await
    } else if let Some(v) = req.params.get("login_verifier") {
        // The way back from a login app.
        match out.come_back(req.edge, v) {
            Some((Pending::Device(code), user)) => {
                out.sign_in_as(req.edge, &user).await;
                device_code_step(&req, &mut out, Some(code), Some(user)).await
            }
            _ => bad_verifier(),
        }
    } else {
        let prefill = req.params.get("user_code").map(display_user_code);
        device_entry(&req, &mut out, prefill, None, StatusCode::OK)
    };
    out.finish(resp)
}

pub(super) fn device_entry(
    req: &Request<'_>,
    out: &mut Out,
    user_code: Option<String>,
    error: Option<&str>,
    status: StatusCode,
) -> Response<Bytes> {
    let page = pages::DeviceEntry {
        title: "Connect a device".into(),
        action: req.head.uri.path().to_string(),
        csrf: out.csrf_token(req.edge),
        user_code,
        error: error.map(str::to_string),
    };
    html(status, pages::device_entry(&page))
}

pub(super) async fn device_post(req: &Request<'_>, out: &mut Out) -> Response<Bytes> {
    let edge = req.edge;
    if let Some(r) = out.csrf_refusal(req) {
        return r;
    }
    let peer = req.peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let limit = edge.config().device.max_wrong_codes_per_minute;
    let wrong = edge.pages().wrong_codes.get(&peer);
    if wrong
        .as_ref()
        .is_some_and(|w| w.load(Ordering::Relaxed) >= limit)
    {
        return too_many("Too many codes were entered. Wait a minute, then try again.");
    }
    // The code comes typed in, or sealed from the sign-in page.
    let typed = req.params.get("user_code").map(str::to_string).or_else(|| {
        req.params
            .get("request")
            .and_then(|t| edge.pages().sealer.open::<String>("device", t))
    });
    device_code_step(req, out, typed, None).await
}

/// The verification page once a code is in hand (typed, sealed in a form, or back from the
/// login app with `signed_in`): check it, sign the user in, confirm, decide.
pub(super) async fn device_code_step(
    req: &Request<'_>,
    out: &mut Out,
    typed: Option<String>,
    signed_in: Option<String>,
) -> Response<Bytes> {
    let edge = req.edge;
    let peer = req.peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let Some(code) = typed.as_deref().and_then(normalise_user_code) else {
        count_wrong(edge, peer);
        let msg = "Enter the code shown on your device.";
        return device_entry(req, out, typed, Some(msg), StatusCode::BAD_REQUEST);
    };
    let grant = match edge
        .store()
        .device_grant_by_user_code(&code, edge.now())
        .await
    {
        Ok(g) => g,
        Err(e) => return error_page(&e.into()),
    };
    let Some(grant) = grant.filter(|g| g.status == DeviceStatus::Pending) else {
        count_wrong(edge, peer);
        let msg = "That code is not valid, has expired, or was already used.";
        return device_entry(
            req,
            out,
            typed.map(|t| display_user_code(&t)),
            Some(msg),
            StatusCode::BAD_REQUEST,
        );
    };
    let client_name = match edge.clients().get(&grant.grant.client_id).await {
        Ok(Some(c)) => display_name(&c),
        Ok(None) => grant.grant.client_id.clone(),
        Err(e) => return error_page(&e.into()),
    };
    let sealed_code = edge.pages().sealer.seal("device", request_ttl(edge), &code);
    let mut user = match signed_in {
        Some(u) => Some(u),
        None => out.session_user(req).await,
    };
    if let Some(username) = req.params.get("username") {
        match check_password(req, username).await {
            Ok(SignIn::As(u)) => {
                out.sign_in_as(edge, &u.id).await;
                user = Some(u.id);
            }
            Ok(SignIn::Throttled) => {
                return too_many("Too many failed sign-ins. Wait a minute, then try again.")
            }
            Ok(SignIn::Wrong) => {
                let msg = "The username or password is not right.";
                return sign_in_form(
                    req,
                    out,
                    client_name,
                    sealed_code,
                    Some(msg),
                    // 400, not 401: no HTTP authentication scheme applies to a form.
                    StatusCode::BAD_REQUEST,
                );
            }
            Err(e) => return error_page(&e.into()),
        }
    }
    let Some(user) = user else {
        if let Some(url) = &edge.config().authorization.login_url {
            return out.hand_off(edge, url, Pending::Device(code), StatusCode::SEE_OTHER);
        }
        return sign_in_form(req, out, client_name, sealed_code, None, StatusCode::OK);
    };
    let decision = req.params.get("decision");
    if decision.is_none() || req.params.get("username").is_some() {
        let page = pages::DeviceConfirm {
            title: "Connect this device?".into(),
            client: client_name,
            user,
            user_code: display_user_code(&code),
            scopes: scope_list(grant.grant.scopes.as_str()),
            action: req.head.uri.path().to_string(),
            csrf: out.csrf_token(edge),
        };
        return html(StatusCode::OK, pages::device_confirm(&page));
    }
    let approve = decision == Some("allow");
    match edge
        .store()
        .decide_device_grant(&code, &user, approve, edge.now())
        .await
    {
        Ok(true) if approve => done_page(
            StatusCode::OK,
            "Device connected",
            "You can return to your device. It will continue on its own.",
        ),
        Ok(true) => done_page(
            StatusCode::OK,
            "Request denied",
            "The device was not given access. You can close this page.",
        ),
        Ok(false) => device_entry(
            req,
            out,
            None,
            Some("That code is not valid, has expired, or was already used."),
            StatusCode::BAD_REQUEST,
        ),
        Err(e) => error_page(&e.into()),
    }
}

pub(super) fn count_wrong(edge: &Core, peer: IpAddr) {
    edge.pages()
        .wrong_codes
        .get_with(peer, || Arc::new(AtomicU32::new(0)))
        .fetch_add(1, Ordering::Relaxed);
}

/// A new user code, normalised (upper case, no separator).
pub(crate) fn new_user_code() -> String {
    let mut raw = [0u8; USER_CODE_LEN];
    crate::tokens::fill_random(&mut raw);
    // 256 is not a multiple of 20: redraw the few bytes that would bias the choice.
    raw.iter_mut().for_each(|b| {
        while *b >= 240 {
            let mut one = [0u8; 1];
            crate::tokens::fill_random(&mut one);
            *b = one[0];
        }
    });
    raw.iter()
        .map(|b| USER_CODE_ALPHABET[(*b % 20) as usize] as char)
        .collect()
}

/// A typed user code, normalised: case, spaces and dashes do not matter. `None` when it
/// cannot be one of ours.
pub(crate) fn normalise_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// `BCDFGHJK` as `BCDF-GHJK`.
pub(crate) fn display_user_code(code: &str) -> String {
    match normalise_user_code(code) {
        Some(c) => format!("{}-{}", &c[..4], &c[4..]),
        None => code.chars().take(16).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_easy_to_type() {
        for _ in 0..200 {
            let c = new_user_code();
            assert_eq!(c.len(), 8);
            assert!(c.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
            assert_eq!(
                normalise_user_code(&display_user_code(&c)).as_deref(),
                Some(c.as_str())
            );
        }
        assert_eq!(
            normalise_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalise_user_code(" BCDF GHJK ").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalise_user_code("BCDF-GHJA"), None); // a vowel
        assert_eq!(normalise_user_code("BCDF-GHJ"), None);
        assert_eq!(display_user_code("bcdfghjk"), "BCDF-GHJK");
    }
}
