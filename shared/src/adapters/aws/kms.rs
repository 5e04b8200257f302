//! [`KeyService`] on KMS data keys. The encryption context goes into both GenerateDataKey and
//! Decrypt, so KMS itself refuses to unwrap a key under any other context; Decrypt also names
//! the configured key, so a ciphertext from another master key is refused too.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_sdk_kms::Client;

use super::readable;
use crate::ports::keys::{DataKey, EncryptionContext, KeyError, KeyService};

/// The KMS key service.
#[derive(Debug, Clone)]
pub struct KmsKeys {
    client: Client,
    key_id: String,
}

impl KmsKeys {
    /// A key service wrapping data keys under `key_id` (key id, ARN, alias or alias ARN).
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        KmsKeys { client, key_id: key_id.into() }
    }
}

fn unavailable<E: std::error::Error>(err: E) -> KeyError {
    KeyError::Unavailable(readable(&err))
}

/// KMS rejects an empty encryption context map as a parameter; no context means None.
fn context_param(context: &EncryptionContext) -> Option<HashMap<String, String>> {
    (!context.is_empty()).then(|| context.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn exactly_32(bytes: &[u8]) -> Result<[u8; 32], KeyError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| {
        KeyError::Unavailable(format!("KMS returned a {}-byte data key, expected 32", bytes.len()))
    })
}

impl KmsKeys {
    /// Whether KMS decrypts the blob when no key is named.
    async fn decrypts_under_any_key(&self, wrapped: &[u8], context: &EncryptionContext) -> bool {
        self.client
            .decrypt()
            .ciphertext_blob(Blob::new(wrapped.to_vec()))
            .set_encryption_context(context_param(context))
            .send()
            .await
            .is_ok()
    }
}

#[async_trait]
impl KeyService for KmsKeys {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, KeyError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(context_param(context))
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        let plaintext = out
            .plaintext()
            .ok_or_else(|| KeyError::Unavailable("KMS returned no plaintext key".to_string()))?;
        let wrapped = out
            .ciphertext_blob()
            .ok_or_else(|| KeyError::Unavailable("KMS returned no wrapped key".to_string()))?;
        Ok(DataKey {
            plaintext: exactly_32(plaintext.as_ref())?,
            wrapped: wrapped.as_ref().to_vec(),
        })
    }

    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<[u8; 32], KeyError> {
        if wrapped.is_empty() {
            // KMS would reject this as a parameter validation error, not a bad ciphertext.
            return Err(KeyError::InvalidCiphertext);
        }
        let result = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped.to_vec()))
            .set_encryption_context(context_param(context))
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                return Err(match e.into_service_error() {
                    // A context mismatch or corrupted blob is InvalidCiphertext; a blob wrapped
                    // under another master key is IncorrectKey.
                    DecryptError::InvalidCiphertextException(_)
                    | DecryptError::IncorrectKeyException(_) => KeyError::InvalidCiphertext,
                    // moto answers a bare AccessDenied where KMS says IncorrectKey. Tell the two
                    // meanings apart: if the blob decrypts without naming our key, it belongs to
                    // another master key we may use (a ciphertext problem, and the plaintext is
                    // dropped); if not, we lack permission (an outage).
                    other if other.code() == Some("AccessDeniedException") => {
                        if self.decrypts_under_any_key(wrapped, context).await {
                            KeyError::InvalidCiphertext
                        } else {
                            unavailable(other)
                        }
                    }
                    other => unavailable(other),
                });
            }
        };
        let plaintext = out
            .plaintext()
            .ok_or_else(|| KeyError::Unavailable("KMS returned no plaintext key".to_string()))?;
        // Something that decrypts to another length was never one of our data keys.
        <[u8; 32]>::try_from(plaintext.as_ref()).map_err(|_| KeyError::InvalidCiphertext)
    }

    async fn wrap_data_key(
        &self,
        plaintext: &[u8; 32],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, KeyError> {
        let out = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(plaintext.to_vec()))
            .set_encryption_context(context_param(context))
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        let wrapped = out
            .ciphertext_blob()
            .ok_or_else(|| KeyError::Unavailable("KMS returned no ciphertext".to_string()))?;
        Ok(wrapped.as_ref().to_vec())
    }

    async fn describe(&self) -> Result<(), KeyError> {
        let out = self
            .client
            .describe_key()
            .key_id(&self.key_id)
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        match out.key_metadata().map(|m| m.enabled()) {
            Some(true) => Ok(()),
            Some(false) => {
                Err(KeyError::Unavailable(format!("KMS key {} is disabled", self.key_id)))
            }
            None => Err(KeyError::Unavailable("KMS returned no key metadata".into())),
        }
    }
}
