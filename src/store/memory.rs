//! An in-process store for tests and throwaway runs. Nothing survives a restart.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    ClientRecord, NewFamily, NewToken, Rotation, Store, StoreError, TokenRecord, UnixTime,
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
        let mut s = self.state();
        if let Some(f) = family {
            if s.families.contains_key(&f.id) {
                return Err(StoreError::Conflict);
            }
        }
        s.insert(tokens)?;
        if let Some(f) = family {
            s.families.insert(
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
        let Some(rec) = s.tokens.get(old).and_then(|t| s.record(t)) else {
            return Ok(Rotation::NotFound);
        };
        if rec.kind != kind {
            return Ok(Rotation::NotFound);
        }
        if rec.client_id != client_id {
            return Ok(Rotation::WrongClient);
        }
        if rec.revoked {
            return Ok(Rotation::Dead);
        }
        if rec.consumed_at.is_some() {
            if let Some(f) = s.families.get_mut(&rec.family) {
                f.revoked = true;
            }
            return Ok(Rotation::Replayed(rec.family));
        }
        if !rec.is_live(now) {
            return Ok(Rotation::Dead);
        }
        s.insert(new)?;
        if let Some(t) = s.tokens.get_mut(old) {
            t.consumed_at = Some(now);
        }
        Ok(Rotation::Rotated(rec))
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
        }
        let live: std::collections::HashSet<FamilyId> =
            s.tokens.values().map(|t| t.new.family).collect();
        s.families.retain(|id, _| live.contains(id));
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

    async fn put_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.state()
            .clients
            .insert(client.id.clone(), client.clone());
        Ok(())
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
}
