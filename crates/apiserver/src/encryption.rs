//! Secrets encrypted at rest: a [`Store`] decorator that seals the values of Secrets
//! (`/registry/core/secrets/...`, member cluster credentials included) with AES-256-GCM before
//! they reach the backend, and opens them on the way back (get, list, watch). The object key
//! is the additional authenticated data, so a sealed value cannot be moved to another key.
//! Values stored before encryption was turned on are read as they are and sealed on their next
//! write.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use store::{
    Deleted, Event, KeyValue, ListOptions, ListPage, Result, Revision, Store, StoreError,
    WatchStream,
};

/// What sealed values start with (the scheme and version).
const MAGIC: &[u8] = b"k8s:enc:aesgcm:v1:";
/// The keys whose values are sealed.
pub const SECRETS_PREFIX: &[u8] = b"/registry/core/secrets/";

pub struct EncryptedSecrets {
    inner: Arc<dyn Store>,
    key: Arc<LessSafeKey>,
    random: SystemRandom,
}

/// Reads a 32-byte key: raw bytes, or base64 text of them.
pub fn read_key_file(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    use base64::Engine as _;
    let bytes = std::fs::read(path)?;
    let decoded = if bytes.len() == 32 {
        bytes
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(String::from_utf8_lossy(&bytes).trim())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
    };
    decoded.try_into().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: the encryption key must be 32 bytes (raw or base64)", path.display()),
        )
    })
}

/// Creates a random key file (base64, mode 0600) unless it exists.
pub fn ensure_key_file(path: &std::path::Path) -> std::io::Result<()> {
    use base64::Engine as _;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Ok(());
    }
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| std::io::Error::other("no randomness for the encryption key"))?;
    if let Some(dir) = path.parent() {
        crate::files::private_dir(dir)?;
    }
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(base64::engine::general_purpose::STANDARD.encode(key).as_bytes())
}

fn open(cipher: &LessSafeKey, key: &[u8], value: Bytes) -> Result<Bytes> {
    let Some(rest) = value.strip_prefix(MAGIC) else { return Ok(value) };
    let corrupt = || StoreError::Corrupt {
        message: format!("cannot decrypt {} (wrong encryption key?)", String::from_utf8_lossy(key)),
    };
    if rest.len() < NONCE_LEN {
        return Err(corrupt());
    }
    let (nonce, sealed_data) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
    let mut data = sealed_data.to_vec();
    let plain = cipher.open_in_place(nonce, Aad::from(key), &mut data).map_err(|_| corrupt())?;
    Ok(Bytes::copy_from_slice(plain))
}

fn open_kv(cipher: &LessSafeKey, mut kv: KeyValue) -> Result<KeyValue> {
    kv.value = open(cipher, &kv.key, kv.value)?;
    Ok(kv)
}

fn sealed(key: &[u8]) -> bool {
    key.starts_with(SECRETS_PREFIX)
}

impl EncryptedSecrets {
    pub fn new(inner: Arc<dyn Store>, key: [u8; 32]) -> Result<EncryptedSecrets> {
        let key = UnboundKey::new(&AES_256_GCM, &key)
            .map_err(|_| StoreError::Corrupt { message: "invalid AES-256 key".into() })?;
        Ok(EncryptedSecrets {
            inner,
            key: Arc::new(LessSafeKey::new(key)),
            random: SystemRandom::new(),
        })
    }

    fn seal(&self, key: &[u8], value: Bytes) -> Result<Bytes> {
        if !sealed(key) {
            return Ok(value);
        }
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| StoreError::Corrupt { message: "no randomness for a nonce".into() })?;
        let mut data = value.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key),
                &mut data,
            )
            .map_err(|_| StoreError::Corrupt { message: "encryption failed".into() })?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + data.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&data);
        Ok(Bytes::from(out))
    }

    fn open_kv(&self, kv: KeyValue) -> Result<KeyValue> {
        open_kv(&self.key, kv)
    }

    /// The plaintext value a write put (callers expect back what they wrote).
    fn with_value(mut kv: KeyValue, value: Bytes) -> KeyValue {
        kv.value = value;
        kv
    }
}

#[async_trait::async_trait]
impl Store for EncryptedSecrets {
    async fn create(&self, key: Bytes, value: Bytes) -> Result<KeyValue> {
        StoreError::check_size(&value)?;
        let stored = self.seal(&key, value.clone())?;
        Ok(Self::with_value(self.inner.create(key, stored).await?, value))
    }

    async fn get(&self, key: &[u8], revision: Option<Revision>) -> Result<Option<KeyValue>> {
        self.inner.get(key, revision).await?.map(|kv| self.open_kv(kv)).transpose()
    }

    async fn update(&self, key: Bytes, value: Bytes, expected: Revision) -> Result<KeyValue> {
        StoreError::check_size(&value)?;
        let stored = self.seal(&key, value.clone())?;
        Ok(Self::with_value(self.inner.update(key, stored, expected).await?, value))
    }

    async fn delete(&self, key: &[u8], expected: Option<Revision>) -> Result<Deleted> {
        let mut deleted = self.inner.delete(key, expected).await?;
        deleted.prev = self.open_kv(deleted.prev)?;
        Ok(deleted)
    }

    async fn list(&self, prefix: &[u8], options: ListOptions) -> Result<ListPage> {
        let mut page = self.inner.list(prefix, options).await?;
        page.items = page.items.into_iter().map(|kv| self.open_kv(kv)).collect::<Result<_>>()?;
        Ok(page)
    }

    async fn watch(&self, prefix: &[u8], after: Revision) -> Result<WatchStream> {
        let stream = self.inner.watch(prefix, after).await?;
        let cipher = Arc::clone(&self.key);
        Ok(Box::pin(stream.map(move |event| {
            event.and_then(|event| match event {
                Event::Put { kv, prev } => Ok(Event::Put {
                    kv: open_kv(&cipher, kv)?,
                    prev: prev.map(|p| open_kv(&cipher, p)).transpose()?,
                }),
                Event::Delete { revision, prev } => {
                    Ok(Event::Delete { revision, prev: open_kv(&cipher, prev)? })
                }
            })
        })))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        self.inner.compacted_revision().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn secrets_are_sealed_in_the_backend_and_open_through_the_decorator() {
        let backend: Arc<dyn Store> = Arc::new(store_memory::MemoryStore::default());
        let store = EncryptedSecrets::new(Arc::clone(&backend), [7; 32]).unwrap();
        let key = Bytes::from_static(b"/registry/core/secrets/ns/s");
        let plain = Bytes::from_static(b"{\"data\":{\"password\":\"aHVudGVyMg==\"}}");
        let written = store.create(key.clone(), plain.clone()).await.unwrap();
        assert_eq!(written.value, plain);
        let raw = backend.get(&key, None).await.unwrap().unwrap();
        assert!(raw.value.starts_with(MAGIC) && !raw.value.windows(8).any(|w| w == b"aHVudGVy"));
        assert_eq!(store.get(&key, None).await.unwrap().unwrap().value, plain);
        assert_eq!(
            store.list(b"/registry/core/secrets/", Default::default()).await.unwrap().items[0]
                .value,
            plain
        );
        // Other kinds pass through untouched.
        let cm = Bytes::from_static(b"/registry/core/configmaps/ns/c");
        store.create(cm.clone(), Bytes::from_static(b"{}")).await.unwrap();
        assert_eq!(backend.get(&cm, None).await.unwrap().unwrap().value, Bytes::from_static(b"{}"));
        // A value stored before encryption is read as is, and sealed on its next write.
        let old = Bytes::from_static(b"/registry/core/secrets/ns/old");
        let kv = backend.create(old.clone(), Bytes::from_static(b"{}")).await.unwrap();
        assert_eq!(store.get(&old, None).await.unwrap().unwrap().value, Bytes::from_static(b"{}"));
        store.update(old.clone(), Bytes::from_static(b"{}"), kv.mod_revision).await.unwrap();
        assert!(backend.get(&old, None).await.unwrap().unwrap().value.starts_with(MAGIC));
        // A value sealed for one key does not open under another, nor with another key.
        let moved = backend.get(&key, None).await.unwrap().unwrap().value;
        backend
            .create(Bytes::from_static(b"/registry/core/secrets/ns/moved"), moved)
            .await
            .unwrap();
        assert!(store.get(b"/registry/core/secrets/ns/moved", None).await.is_err());
        let other = EncryptedSecrets::new(backend, [8; 32]).unwrap();
        assert!(other.get(&key, None).await.is_err());
        // Watches deliver plaintext.
        let store = EncryptedSecrets::new(Arc::clone(&other.inner), [7; 32]).unwrap();
        let r = store.current_revision().await.unwrap();
        let mut watch = store.watch(b"/registry/core/secrets/ns/w", r).await.unwrap();
        store
            .create(Bytes::from_static(b"/registry/core/secrets/ns/w"), plain.clone())
            .await
            .unwrap();
        match watch.next().await {
            Some(Ok(Event::Put { kv, .. })) => assert_eq!(kv.value, plain),
            other => panic!("{other:?}"),
        }
    }
}
