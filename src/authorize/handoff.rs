//! The browser hand-off to a login app of the deployment's own: the challenge it is sent
//! with, and how the app settles it ([`Core::accept_login`](crate::engine::Core::accept_login), [`Core::reject_login`](crate::engine::Core::reject_login)).

use super::*;

impl Core {
    /// Accepts a login challenge the edge sent to `authorization.login_url`: `user` has signed
    /// in. Returns the URL to send the browser to, which continues the flow (consent, then the
    /// client). Fails for a challenge that is forged or has expired.
    pub fn accept_login(&self, challenge: &str, user: &str) -> Result<String, OAuthError> {
        let challenge = self.open_challenge(challenge)?;
        if user.is_empty() || user.chars().any(char::is_control) {
            return Err(OAuthError::invalid_request("the user id is not valid"));
        }
        let base = match &challenge.pending {
            Pending::Authorize(_) => self.page_url(crate::profiles::EndpointKind::Authorize),
            Pending::Device(_) => self.page_url(crate::profiles::EndpointKind::DeviceVerification),
        };
        let verifier = self.pages().sealer.seal(
            "verifier",
            VERIFIER_TTL,
            &Verified {
                challenge,
                user: user.to_string(),
            },
        );
        Ok(with_query(
            &base.unwrap_or_default(),
            &[("login_verifier", &verifier)],
        ))
    }

    /// Rejects a login challenge: returns the URL that sends the browser back to the client
    /// with `error=access_denied`.
    pub fn reject_login(&self, challenge: &str) -> Result<String, OAuthError> {
        let request = match self.open_challenge(challenge)?.pending {
            Pending::Authorize(r) => r,
            // The device keeps waiting until its code expires; the user is back at the page
            // where codes are entered.
            Pending::Device(_) => {
                return Ok(self
                    .page_url(crate::profiles::EndpointKind::DeviceVerification)
                    .unwrap_or_default())
            }
        };
        let e = OAuthError::new(ErrorCode::AccessDenied, "the user did not sign in");
        Ok(error_url(
            self,
            request.dialect,
            &request.target,
            request.state.as_deref(),
            &e,
        ))
    }

    pub(super) fn open_challenge(&self, challenge: &str) -> Result<Challenge, OAuthError> {
        self.pages()
            .sealer
            .open::<Challenge>("login", challenge)
            .ok_or_else(|| {
                OAuthError::invalid_request("the login challenge is not valid or has expired")
            })
    }

    /// A page's URL: absolute when the issuer is configured.
    pub(super) fn page_url(&self, kind: crate::profiles::EndpointKind) -> Option<String> {
        let path = self.profiles.iter().find_map(|p| p.path_of(kind))?;
        Some(format!(
            "{}{path}",
            self.config().issuer.as_deref().unwrap_or("")
        ))
    }

    pub(crate) fn pages(&self) -> &Pages {
        &self.pages
    }
}
