//! [`KeyService`] with a local master key file, standing in for KMS data keys.
//!
//! Wrapped key format (version 1): `[0x01] ++ nonce (12 bytes) ++ AES-256-GCM(master key,
//! nonce, data key, aad = canonical context)`, 61 bytes in all. The canonical context is the
//! `BTreeMap` serialised with serde_json (keys sorted), so the same map always authenticates
//! the same way and any other map fails the tag check, as KMS's encryption context does.

use std::path::Path;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use async_trait::async_trait;

use super::load_or_create_secret;
use crate::adapters::AdapterError;
use crate::ports::keys::{DataKey, EncryptionContext, KeyError, KeyService};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const WRAPPED_LEN: usize = 1 + NONCE_LEN + 32 + TAG_LEN;

/// The embedded key service: data keys wrapped under `master.key` (32 random bytes, created
/// once, mode 0600).
pub struct LocalKeys {
    master: Aes256Gcm,
}

impl LocalKeys {
    /// Loads the master key at `path`, creating it when missing (atomically: processes
    /// starting at once agree on one key).
    pub fn open(path: &Path) -> Result<Self, AdapterError> {
        let key = load_or_create_secret(path).map_err(|e| AdapterError::new("keys", e))?;
        Ok(Self::from_master_key(&key))
    }

    /// A key service over the given master key (tests, or keys kept elsewhere).
    pub fn from_master_key(key: &[u8; 32]) -> Self {
        LocalKeys { master: Aes256Gcm::new(key.into()) }
    }
}

impl LocalKeys {
    fn wrap(&self, plaintext: &[u8; 32], context: &EncryptionContext) -> Result<Vec<u8>, KeyError> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let aad = aad(context)?;
        let sealed = self
            .master
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| KeyError::Unavailable("AES-GCM encryption failed".into()))?;
        let mut wrapped = Vec::with_capacity(WRAPPED_LEN);
        wrapped.push(VERSION);
        wrapped.extend_from_slice(&nonce);
        wrapped.extend_from_slice(&sealed);
        Ok(wrapped)
    }
}

fn aad(context: &EncryptionContext) -> Result<Vec<u8>, KeyError> {
    serde_json::to_vec(context)
        .map_err(|e| KeyError::Unavailable(format!("encoding encryption context: {e}")))
}

#[async_trait]
impl KeyService for LocalKeys {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, KeyError> {
        let plaintext: [u8; 32] = rand::random();
        let wrapped = self.wrap(&plaintext, context)?;
        Ok(DataKey { plaintext, wrapped })
    }

    async fn wrap_data_key(
        &self,
        plaintext: &[u8; 32],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, KeyError> {
        self.wrap(plaintext, context)
    }

    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<[u8; 32], KeyError> {
        if wrapped.len() != WRAPPED_LEN || wrapped[0] != VERSION {
            return Err(KeyError::InvalidCiphertext);
        }
        let (nonce, sealed) = wrapped[1..].split_at(NONCE_LEN);
        let aad = aad(context)?;
        let plain = self
            .master
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
            .map_err(|_| KeyError::InvalidCiphertext)?;
        <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| KeyError::InvalidCiphertext)
    }

    async fn describe(&self) -> Result<(), KeyError> {
        // The master key was read (or created) when the adapter opened: it is there.
        Ok(())
    }
}
