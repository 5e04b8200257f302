//! Key service port, shaped like KMS data keys with an encryption context.

use std::collections::BTreeMap;

use async_trait::async_trait;

/// Encryption context: bound into every wrapped key; decrypting needs the same map.
pub type EncryptionContext = BTreeMap<String, String>;

/// A fresh 256-bit data key, in plaintext (use, never store) and wrapped (store).
pub struct DataKey {
    /// The key itself.
    pub plaintext: [u8; 32],
    /// The key encrypted under the master key with the context; opaque.
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").field("wrapped_len", &self.wrapped.len()).finish()
    }
}

/// Errors of the key service.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The wrapped key is corrupt, or belongs to another context or master key.
    #[error("the wrapped key cannot be decrypted with this context")]
    InvalidCiphertext,
    /// The key service could not be reached or failed.
    #[error("key service unavailable: {0}")]
    Unavailable(String),
    /// The function was built without this port: its route or job table entry does not declare
    /// it (see `adapters::undeclared`). A table bug, never a transient failure.
    #[error("{0}")]
    Undeclared(String),
}

/// The key service.
#[async_trait]
pub trait KeyService: Send + Sync {
    /// Generates a new data key bound to the context.
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, KeyError>;
    /// Unwraps a data key; fails unless the context is the one it was generated with.
    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<[u8; 32], KeyError>;
    /// Wraps a data key that exists already (KMS `Encrypt`), bound to the context, so that
    /// [`Self::decrypt_data_key`] with the same context gives it back. Only an organization
    /// import uses it: a stack's key moves between deployments, and its ciphertexts with it.
    async fn wrap_data_key(
        &self,
        plaintext: &[u8; 32],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, KeyError>;
    /// Checks that the key exists and can be used, without using it (KMS `DescribeKey`).
    async fn describe(&self) -> Result<(), KeyError>;
}
