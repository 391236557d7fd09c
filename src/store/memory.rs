//! An in-process store for tests and throwaway runs. Nothing survives a restart.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::rules::{check_code, poll_step, rotation_step, RotationStep};
use super::{
    ClientRecord, CodeBinding, DeviceGrant, DevicePoll, DeviceStatus, DeviceTokens, NewDeviceGrant,
    NewFamily, NewToken, Rotation, Store, StoreError, TokenRecord, UnixTime,
};
use crate::tokens::{FamilyId, ServerKey, TokenHash, TokenKind};

#[derive(Debug)]
struct Family {
    client_id: String,
    user: Option<String>,
    grant_type: String,
    revoked: bool,
}

#[derive(Debug)]
struct Token {
    new: NewToken,
    consumed_at: Option<UnixTime>,
}

#[derive(Debug, Default)]
struct State {
    families: HashMap<FamilyId, Family>,
    tokens: HashMap<TokenHash, Token>,
    clients: HashMap<String, ClientRecord>,
    keys: Vec<ServerKey>,
    /// What each authorization code is bound to, by the code's hash.
    bindings: HashMap<TokenHash, CodeBinding>,
    /// Device grants by device-code hash. Looked up by user code with a scan: this store is
    /// for tests and throwaway runs, and an index keyed by user code would print them in
    /// `Debug`.
    devices: HashMap<TokenHash, DeviceGrant>,
}

impl State {
    fn record(&self, t: &Token) -> Option<TokenRecord> {
        let f = self.families.get(&t.new.family)?;
        Some(TokenRecord {
            hash: t.new.hash,
            kind: t.new.kind,
            family: t.new.family,
            client_id: f.client_id.clone(),
            user: f.user.clone(),
            grant_type: f.grant_type.clone(),
            scopes: t.new.scopes.clone(),
            issued_at: t.new.issued_at,
            expires_at: t.new.expires_at,
            consumed_at: t.consumed_at,
            revoked: f.revoked,
        })
    }

    /// Writes `family` (when given) and `tokens`, or nothing on a conflict.
    fn issue(&mut self, family: Option<&NewFamily>, tokens: &[NewToken]) -> Result<(), StoreError> {
        if let Some(f) = family {
            if self.families.contains_key(&f.id) {
                return Err(StoreError::Conflict);
            }
        }
        self.insert(tokens)?;
        if let Some(f) = family {
            self.families.insert(
                f.id,
                Family {
                    client_id: f.client_id.clone(),
                    user: f.user.clone(),
                    grant_type: f.grant_type.clone(),
                    revoked: false,
                },
            );
        }
        Ok(())
    }

    fn insert(&mut self, tokens: &[NewToken]) -> Result<(), StoreError> {
        if tokens.iter().any(|t| self.tokens.contains_key(&t.hash)) {
            return Err(StoreError::Conflict);
        }
        for t in tokens {
            self.tokens.insert(
                t.hash,
                Token {
                    new: t.clone(),
                    consumed_at: None,
                },
            );
        }
        Ok(())
    }
}

/// A store in memory: one mutex around plain maps. Every operation is atomic.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-written in a way later
        // callers could misread, so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn issue(
        &self,
        family: Option<&NewFamily>,
        tokens: &[NewToken],
    ) -> Result<(), StoreError> {
        self.state().issue(family, tokens)
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        let s = self.state();
        Ok(s.tokens.get(hash).and_then(|t| s.record(t)))
    }

    async fn rotate(
        &self,
        old: &TokenHash,
        kind: TokenKind,
        client_id: &str,
        now: UnixTime,
        new: &[NewToken],
    ) -> Result<Rotation, StoreError> {
        let mut s = self.state();
        let rec = s.tokens.get(old).and_then(|t| s.record(t));
        match rotation_step(rec, kind, client_id, now) {
            RotationStep::Answer(r) => Ok(r),
            RotationStep::RevokeFamily(family) => {
                if let Some(f) = s.families.get_mut(&family) {
                    f.revoked = true;
                }
                Ok(Rotation::Replayed(family))
            }
            RotationStep::Consume(rec) => {
                s.insert(new)?;
                if let Some(t) = s.tokens.get_mut(old) {
                    t.consumed_at = Some(now);
                }
                Ok(Rotation::Rotated(rec))
            }
        }
    }

    async fn revoke_family(&self, family: &FamilyId, _now: UnixTime) -> Result<(), StoreError> {
        if let Some(f) = self.state().families.get_mut(family) {
            f.revoked = true;
        }
        Ok(())
    }

    async fn revoke_all(
        &self,
        client_id: Option<&str>,
        user: Option<&str>,
        _now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        let mut s = self.state();
        let mut out = Vec::new();
        for (id, f) in s.families.iter_mut() {
            let hit = client_id.is_none_or(|c| f.client_id == c)
                && user.is_none_or(|u| f.user.as_deref() == Some(u));
            if hit && !f.revoked && (client_id.is_some() || user.is_some()) {
                f.revoked = true;
                out.push(*id);
            }
        }
        out.sort();
        Ok(out)
    }

    async fn purge_expired(&self, before: UnixTime, limit: u32) -> Result<u64, StoreError> {
        let mut s = self.state();
        let dead: Vec<TokenHash> = s
            .tokens
            .iter()
            .filter(|(_, t)| t.new.expires_at.is_some_and(|e| e < before))
            .map(|(h, _)| *h)
            .take(limit as usize)
            .collect();
        for h in &dead {
            s.tokens.remove(h);
            s.bindings.remove(h);
        }
        let live: std::collections::HashSet<FamilyId> =
            s.tokens.values().map(|t| t.new.family).collect();
        s.families.retain(|id, _| live.contains(id));
        // Expired device grants, in a batch of their own, not counted in the result.
        let dead_devices: Vec<TokenHash> = s
            .devices
            .iter()
            .filter(|(_, g)| g.grant.expires_at < before)
            .map(|(h, _)| *h)
            .take(limit as usize)
            .collect();
        for h in &dead_devices {
            s.devices.remove(h);
        }
        Ok(dead.len() as u64)
    }

    async fn server_keys(&self) -> Result<Vec<ServerKey>, StoreError> {
        let mut s = self.state();
        if s.keys.is_empty() {
            s.keys.push(ServerKey::random(1));
        }
        Ok(s.keys.clone())
    }

    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        Ok(self.state().clients.get(id).cloned())
    }

    async fn create_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        match self.state().clients.entry(client.id.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => Err(StoreError::Conflict),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(client.clone());
                Ok(())
            }
        }
    }

    async fn replace_client(
        &self,
        client: &ClientRecord,
        expected: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let mut s = self.state();
        match s.clients.get_mut(&client.id) {
            Some(c) if c.settings == *expected => {
                c.settings = client.settings.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let mut v: Vec<_> = self.state().clients.values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }

    async fn delete_client(&self, id: &str, _now: UnixTime) -> Result<bool, StoreError> {
        let mut s = self.state();
        for f in s.families.values_mut() {
            if f.client_id == id {
                f.revoked = true;
            }
        }
        Ok(s.clients.remove(id).is_some())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn issue_code(
        &self,
        family: &NewFamily,
        code: &NewToken,
        binding: &CodeBinding,
    ) -> Result<(), StoreError> {
        check_code(family, code)?;
        let mut s = self.state();
        if s.bindings.contains_key(&code.hash) {
            return Err(StoreError::Conflict);
        }
        s.issue(Some(family), std::slice::from_ref(code))?;
        s.bindings.insert(code.hash, binding.clone());
        Ok(())
    }

    async fn code_binding(&self, hash: &TokenHash) -> Result<Option<CodeBinding>, StoreError> {
        Ok(self.state().bindings.get(hash).cloned())
    }

    async fn put_device_grant(&self, grant: &NewDeviceGrant) -> Result<(), StoreError> {
        let mut s = self.state();
        if s.devices.contains_key(&grant.device_hash) {
            return Err(StoreError::Conflict);
        }
        let mut stale = None;
        for (h, g) in &s.devices {
            if g.grant.user_code == grant.user_code {
                if g.grant.expires_at > grant.created_at {
                    return Err(StoreError::Conflict);
                }
                stale = Some(*h);
            }
        }
        // An expired grant gives up its user code: it goes, as a purge would take it.
        if let Some(h) = stale {
            s.devices.remove(&h);
        }
        s.devices.insert(
            grant.device_hash,
            DeviceGrant {
                grant: grant.clone(),
                status: DeviceStatus::Pending,
                user: None,
                interval: grant.interval,
                last_poll_ms: None,
            },
        );
        Ok(())
    }

    async fn device_grant_by_user_code(
        &self,
        user_code: &str,
        now: UnixTime,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        let s = self.state();
        Ok(s.devices
            .values()
            .find(|g| g.grant.user_code == user_code && now < g.grant.expires_at)
            .cloned())
    }

    async fn decide_device_grant(
        &self,
        user_code: &str,
        user: &str,
        approve: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut s = self.state();
        let grant = s.devices.values_mut().find(|g| {
            g.grant.user_code == user_code
                && now < g.grant.expires_at
                && g.status == DeviceStatus::Pending
        });
        let Some(g) = grant else {
            return Ok(false);
        };
        g.status = if approve {
            DeviceStatus::Approved
        } else {
            DeviceStatus::Denied
        };
        g.user = Some(user.to_owned());
        Ok(true)
    }

    async fn poll_device_grant(
        &self,
        device_hash: &TokenHash,
        client_id: &str,
        now_ms: i64,
        grace_ms: i64,
        issue: &DeviceTokens,
    ) -> Result<DevicePoll, StoreError> {
        let mut s = self.state();
        let Some(g) = s.devices.get(device_hash) else {
            return Ok(DevicePoll::NotFound);
        };
        // Decide on a copy: a redemption whose tokens cannot be written changes nothing.
        let mut next = g.clone();
        let outcome = poll_step(&mut next, client_id, now_ms, grace_ms);
        if let DevicePoll::Approved(found) = &outcome {
            let (family, tokens) = issue.for_grant(found);
            s.issue(Some(&family), &tokens)?;
        }
        s.devices.insert(*device_hash, next);
        Ok(outcome)
    }
}
