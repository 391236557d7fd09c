//! The rules every backend decides by, written once: pure functions of what the backend read
//! inside its own atomic step (a lock, a transaction). Backends keep the transactions and the
//! SQL; what the answer is comes from here, so that they agree.

use super::{
    DeviceGrant, DevicePoll, DeviceStatus, NewFamily, NewToken, Rotation, StoreError, TokenRecord,
    UnixTime,
};
use crate::tokens::{FamilyId, TokenKind};

/// What a [`Store::rotate`](super::Store::rotate) does with the token it read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RotationStep {
    /// Answer this and write nothing.
    Answer(Rotation),
    /// A replay: revoke the family (durably) and answer [`Rotation::Replayed`].
    RevokeFamily(FamilyId),
    /// Mark the old token consumed, write the new tokens, and answer [`Rotation::Rotated`]
    /// with this record.
    Consume(TokenRecord),
}

/// The rotation decision for the token `rec` (`None`: not stored), presented as a `kind` by
/// `client_id` at `now`: a token of another kind is not found, another client's is left
/// untouched, a revoked or expired one is dead, a consumed one is a replay.
pub(super) fn rotation_step(
    rec: Option<TokenRecord>,
    kind: TokenKind,
    client_id: &str,
    now: UnixTime,
) -> RotationStep {
    let Some(rec) = rec.filter(|r| r.kind == kind) else {
        return RotationStep::Answer(Rotation::NotFound);
    };
    if rec.client_id != client_id {
        return RotationStep::Answer(Rotation::WrongClient);
    }
    if rec.revoked {
        return RotationStep::Answer(Rotation::Dead);
    }
    if rec.consumed_at.is_some() {
        return RotationStep::RevokeFamily(rec.family);
    }
    if !rec.is_live(now) {
        return RotationStep::Answer(Rotation::Dead);
    }
    RotationStep::Consume(rec)
}

/// Refuses an [`Store::issue_code`] call whose code is not a code of `family`: a bug in the
/// caller, which would otherwise store a binding no redemption looks for.
pub(super) fn check_code(family: &NewFamily, code: &NewToken) -> Result<(), StoreError> {
    if code.kind != TokenKind::Code || code.family != family.id {
        return Err(StoreError::Backend(
            "issue_code: the token must be a code of the family written with it".into(),
        ));
    }
    Ok(())
}

/// One poll of the device grant `g` by `client_id`, as [`Store::poll_device_grant`] specifies.
/// Changes `g` to the state the poll leaves it in (`NotFound` and `Expired` leave it as it
/// is) and returns the outcome; `Approved` holds the grant as the poll found it. Every backend
/// decides with this function, inside its own atomic step, so that they agree.
pub(super) fn poll_step(
    g: &mut DeviceGrant,
    client_id: &str,
    now_ms: i64,
    grace_ms: i64,
) -> DevicePoll {
    if g.grant.client_id != client_id {
        return DevicePoll::NotFound;
    }
    if now_ms >= g.grant.expires_at.saturating_mul(1000) {
        return DevicePoll::Expired;
    }
    let previous = g.last_poll_ms;
    let too_soon = previous.is_some_and(|last| {
        let allowed = (i64::from(g.interval) * 1000).saturating_sub(grace_ms);
        now_ms.saturating_sub(last) < allowed
    });
    g.last_poll_ms = Some(now_ms);
    if too_soon {
        g.interval = g.interval.saturating_add(5);
        return DevicePoll::SlowDown;
    }
    match g.status {
        DeviceStatus::Pending => DevicePoll::Pending,
        DeviceStatus::Denied => DevicePoll::Denied,
        DeviceStatus::Redeemed => DevicePoll::Redeemed,
        DeviceStatus::Approved => {
            let found = DeviceGrant {
                last_poll_ms: previous,
                ..g.clone()
            };
            g.status = DeviceStatus::Redeemed;
            DevicePoll::Approved(found)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::TokenHash;

    fn refresh() -> TokenRecord {
        TokenRecord {
            hash: TokenHash::of("r"),
            kind: TokenKind::Refresh,
            family: FamilyId([7; 16]),
            client_id: "app".into(),
            user: Some("alice".into()),
            grant_type: "password".into(),
            scopes: Default::default(),
            issued_at: 100,
            expires_at: Some(200),
            consumed_at: None,
            revoked: false,
        }
    }

    /// Every way a rotation can go, decided in one place for every backend; the checks come
    /// in this order (another client's replay is not a replay, a revoked family's replay
    /// revokes nothing more).
    #[test]
    fn the_rotation_decision() {
        use RotationStep::{Answer, Consume, RevokeFamily};
        let step =
            |r: Option<TokenRecord>, kind, client: &str, now| rotation_step(r, kind, client, now);
        let r = refresh();
        assert_eq!(
            step(Some(r.clone()), TokenKind::Refresh, "app", 150),
            Consume(r.clone())
        );
        assert_eq!(
            step(None, TokenKind::Refresh, "app", 150),
            Answer(Rotation::NotFound)
        );
        assert_eq!(
            step(Some(r.clone()), TokenKind::Code, "app", 150),
            Answer(Rotation::NotFound)
        );
        let consumed = TokenRecord {
            consumed_at: Some(120),
            ..r.clone()
        };
        assert_eq!(
            step(Some(consumed.clone()), TokenKind::Refresh, "other", 150),
            Answer(Rotation::WrongClient)
        );
        assert_eq!(
            step(Some(consumed.clone()), TokenKind::Refresh, "app", 250),
            RevokeFamily(r.family),
            "a replay is a replay even after expiry"
        );
        let revoked = TokenRecord {
            revoked: true,
            ..consumed
        };
        assert_eq!(
            step(Some(revoked), TokenKind::Refresh, "app", 150),
            Answer(Rotation::Dead)
        );
        assert_eq!(
            step(Some(r), TokenKind::Refresh, "app", 200),
            Answer(Rotation::Dead),
            "expired"
        );
    }
}
