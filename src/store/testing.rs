//! A store for tests of what sits on top of a store: it wraps a real one and can be switched
//! off (every call then fails with [`StoreError::Unavailable`], as an unreachable database
//! would), counts token lookups, can slow them down so concurrent misses overlap, and can hold
//! anything the inner store needs kept alive (a temporary directory).

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::tokens::{FamilyId, ServerKey, TokenHash, TokenKind};

/// See the module documentation.
pub struct TestStore<S = MemoryStore> {
    /// The real store.
    pub inner: S,
    down: AtomicBool,
    finds: AtomicUsize,
    find_delay: Option<Duration>,
    notices: Option<tokio::sync::broadcast::Sender<Notice>>,
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl Default for TestStore<MemoryStore> {
    fn default() -> Self {
        TestStore::new(MemoryStore::new())
    }
}

impl<S: Store> TestStore<S> {
    /// Wraps `inner`, switched on.
    pub fn new(inner: S) -> Self {
        TestStore {
            inner,
            down: AtomicBool::new(false),
            finds: AtomicUsize::new(0),
            find_delay: None,
            notices: None,
            _keep: None,
        }
    }

    /// Also holds `value` until the store is dropped (after the inner store).
    pub fn keeping(mut self, value: impl Any + Send + Sync) -> Self {
        self._keep = Some(Box::new(value));
        self
    }

    /// Makes every `find` take `delay` first.
    pub fn with_find_delay(mut self, delay: Duration) -> Self {
        self.find_delay = Some(delay);
        self
    }

    /// Gives the store a notification channel, as a store shared by several instances has:
    /// what [`TestStore::notify`] sends, edges built on this store hear.
    pub fn with_notices(mut self) -> Self {
        self.notices = Some(tokio::sync::broadcast::channel(64).0);
        self
    }

    /// Sends `notice` to every edge built on this store (see [`TestStore::with_notices`]).
    pub fn notify(&self, notice: Notice) {
        if let Some(tx) = &self.notices {
            let _ = tx.send(notice);
        }
    }

    /// Switches the store off (`true`) or on.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// `find` calls so far (failed ones included).
    pub fn finds(&self) -> usize {
        self.finds.load(Ordering::SeqCst)
    }

    /// Sets the `find` count back to zero.
    pub fn reset_finds(&self) {
        self.finds.store(0, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("switched off by the test".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl<S: Store> Store for TestStore<S> {
    async fn issue(&self, f: Option<&NewFamily>, t: &[NewToken]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.issue(f, t).await
    }
    async fn find(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        if let Some(d) = self.find_delay {
            tokio::time::sleep(d).await;
        }
        self.check()?;
        self.inner.find(hash).await
    }
    async fn rotate(
        &self,
        old: &TokenHash,
        kind: TokenKind,
        client_id: &str,
        now: UnixTime,
        new: &[NewToken],
    ) -> Result<Rotation, StoreError> {
        self.check()?;
        self.inner.rotate(old, kind, client_id, now, new).await
    }
    async fn revoke_family(&self, family: &FamilyId, now: UnixTime) -> Result<(), StoreError> {
        self.check()?;
        self.inner.revoke_family(family, now).await
    }
    async fn revoke_all(
        &self,
        client_id: Option<&str>,
        user: Option<&str>,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        self.check()?;
        self.inner.revoke_all(client_id, user, now).await
    }
    async fn purge_expired(&self, before: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.purge_expired(before, limit).await
    }
    async fn server_keys(&self) -> Result<Vec<ServerKey>, StoreError> {
        self.check()?;
        self.inner.server_keys().await
    }
    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.check()?;
        self.inner.client(id).await
    }
    async fn create_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.check()?;
        self.inner.create_client(client).await
    }
    async fn replace_client(
        &self,
        client: &ClientRecord,
        expected: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.replace_client(client, expected).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.ping().await
    }
    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.check()?;
        self.inner.list_clients().await
    }
    async fn delete_client(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.delete_client(id, now).await
    }
    async fn issue_code(
        &self,
        family: &NewFamily,
        code: &NewToken,
        binding: &CodeBinding,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.issue_code(family, code, binding).await
    }
    async fn code_binding(&self, hash: &TokenHash) -> Result<Option<CodeBinding>, StoreError> {
        self.check()?;
        self.inner.code_binding(hash).await
    }
    async fn put_device_grant(&self, grant: &NewDeviceGrant) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put_device_grant(grant).await
    }
    async fn device_grant_by_user_code(
        &self,
        user_code: &str,
        now: UnixTime,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        self.check()?;
        self.inner.device_grant_by_user_code(user_code, now).await
    }
    async fn decide_device_grant(
        &self,
        user_code: &str,
        user: &str,
        approve: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner
            .decide_device_grant(user_code, user, approve, now)
            .await
    }
    async fn poll_device_grant(
        &self,
        device_hash: &TokenHash,
        client_id: &str,
        now_ms: i64,
        grace_ms: i64,
        issue: &DeviceTokens,
    ) -> Result<DevicePoll, StoreError> {
        self.check()?;
        self.inner
            .poll_device_grant(device_hash, client_id, now_ms, grace_ms, issue)
            .await
    }
    /// The test's own channel when it has one ([`TestStore::with_notices`]), else the wrapped
    /// store's.
    fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<Notice>> {
        match &self.notices {
            Some(tx) => Some(tx.subscribe()),
            None => self.inner.notices(),
        }
    }
}
