//! The KorAP Kustvakt profile (seed `003_c340f25d330ec403.txt`), mounted at `{root}/oauth2`
//! (Kustvakt's examples use the root `/api/v1.0`): `POST /revoke` with form `client_id`,
//! `client_secret` (confidential clients only) and `token`; the hint is named `token_type`.

use super::EndpointKind;
use crate::config::AuthMethod;

pub(super) const ROUTES: &[(&str, EndpointKind)] = &[("/revoke", EndpointKind::Revoke)];

pub(super) fn auth_methods(kind: EndpointKind) -> &'static [AuthMethod] {
    use AuthMethod::*;
    match kind {
        // Form fields only: `client_id` is required, `client_secret` for confidential clients.
        EndpointKind::Revoke => &[ClientSecretPost, None],
        _ => &[],
    }
}
