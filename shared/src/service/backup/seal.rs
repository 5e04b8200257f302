//! Sealing data keys under the operator's passphrase, so that an export can carry them to a
//! deployment with another master key (embedded key file or KMS) without ever holding one in
//! plain text.
//!
//! The passphrase is stretched with PBKDF2-HMAC-SHA256 (random 16-byte salt, iterations kept
//! in the manifest) into an AES-256-GCM key. Each sealed value is `nonce (12) ‖ ciphertext+tag`
//! with associated data `stackhouse-export:v1:<export id>:<purpose>`, the purpose being
//! `check` or `datakey:<key id>`: a sealed key cannot be moved to another key id or spliced in
//! from another export unnoticed.
//!
//! The same passphrase authenticates the whole export: the manifest, which holds every other
//! file's SHA-256, carries an HMAC-SHA256 of itself, so a record added or changed by someone
//! without the passphrase (a token hash for themselves, say) is refused. The AES and HMAC keys
//! are two HMAC-SHA256 expansions of the PBKDF2 output.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::format::{b64, Sealing};
use crate::error::{Error, Result};

/// The one KDF of format version 1.
pub const KDF: &str = "pbkdf2-hmac-sha256";
/// Iterations of a new export: OWASP's 2023 advice for PBKDF2-HMAC-SHA256.
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// Most iterations an import accepts, so a damaged manifest cannot stall it for hours.
const MAX_ITERATIONS: u32 = 10_000_000;
/// Shortest passphrase an export accepts.
pub const MIN_PASSPHRASE_CHARS: usize = 12;
const NONCE_LEN: usize = 12;
const CHECK_PLAINTEXT: &[u8] = b"stackhouse export passphrase check";

/// The operator's passphrase. Never printed.
#[derive(Clone)]
pub struct Passphrase(String);

impl Passphrase {
    /// A passphrase as the operator gave it (surrounding whitespace, such as a file's final
    /// newline, is not part of it).
    pub fn new(text: &str) -> Passphrase {
        Passphrase(text.trim().to_string())
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(…)")
    }
}

/// Seals and opens values of one export.
pub struct Sealer {
    cipher: Aes256Gcm,
    mac_key: [u8; 32],
    export_id: String,
}

/// HMAC-SHA256 of `data` under `key`.
fn hmac(key: &[u8], data: &[u8]) -> Result<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|_| Error::internal("HMAC refused a 32-byte key"))?;
    mac.update(data);
    Ok(mac)
}

/// The sealing and the MAC key from the passphrase.
fn derive(passphrase: &Passphrase, salt: &[u8], iterations: u32) -> Result<(Aes256Gcm, [u8; 32])> {
    let mut master = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(passphrase.0.as_bytes(), salt, iterations, &mut master);
    let seal: [u8; 32] = hmac(&master, b"stackhouse-export seal")?.finalize().into_bytes().into();
    let mac: [u8; 32] = hmac(&master, b"stackhouse-export mac")?.finalize().into_bytes().into();
    Ok((Aes256Gcm::new((&seal).into()), mac))
}

impl Sealer {
    /// A sealer for a new export, and the manifest's description of it. Refuses a short
    /// passphrase: it is all that protects the data keys in the export.
    pub fn create(
        passphrase: &Passphrase,
        iterations: u32,
        export_id: &str,
    ) -> Result<(Sealer, Sealing)> {
        if passphrase.0.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(Error::BadRequest(format!(
                "the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters: it alone \
                 protects the stacks' data keys in the export"
            )));
        }
        let salt: [u8; 16] = rand::random();
        let (cipher, mac_key) = derive(passphrase, &salt, iterations)?;
        let sealer = Sealer { cipher, mac_key, export_id: export_id.into() };
        let check = sealer.seal("check", CHECK_PLAINTEXT)?;
        let sealing = Sealing {
            kdf: KDF.into(),
            iterations,
            salt: b64().encode(salt),
            check: b64().encode(check),
        };
        Ok((sealer, sealing))
    }

    /// The sealer of an export being imported; a 400 when the passphrase is not the one the
    /// export was made with.
    pub fn open_export(
        passphrase: &Passphrase,
        sealing: &Sealing,
        export_id: &str,
    ) -> Result<Sealer> {
        if sealing.kdf != KDF {
            return Err(Error::BadRequest(format!(
                "the export's keys are sealed with {:?}; this Stackhouse knows {KDF}",
                sealing.kdf
            )));
        }
        if sealing.iterations == 0 || sealing.iterations > MAX_ITERATIONS {
            return Err(Error::BadRequest(format!(
                "the export asks for {} PBKDF2 iterations; 1 to {MAX_ITERATIONS} are accepted",
                sealing.iterations
            )));
        }
        let salt = b64()
            .decode(&sealing.salt)
            .map_err(|_| Error::BadRequest("the export's salt is not base64".into()))?;
        let (cipher, mac_key) = derive(passphrase, &salt, sealing.iterations)?;
        let sealer = Sealer { cipher, mac_key, export_id: export_id.into() };
        let check = b64()
            .decode(&sealing.check)
            .map_err(|_| Error::BadRequest("the export's check value is not base64".into()))?;
        match sealer.open("check", &check) {
            Some(plain) if plain == CHECK_PLAINTEXT => Ok(sealer),
            _ => Err(Error::BadRequest(
                "wrong passphrase: it does not open this export's keys".into(),
            )),
        }
    }

    /// The MAC of a manifest's bytes (base64).
    pub fn mac(&self, body: &[u8]) -> Result<String> {
        Ok(b64().encode(hmac(&self.mac_key, body)?.finalize().into_bytes()))
    }

    /// Whether `mac` is the MAC of `body` (compared in constant time).
    pub fn verify(&self, body: &[u8], mac: &str) -> bool {
        match (b64().decode(mac), hmac(&self.mac_key, body)) {
            (Ok(tag), Ok(h)) => h.verify_slice(&tag).is_ok(),
            _ => false,
        }
    }

    fn aad(&self, purpose: &str) -> Vec<u8> {
        format!("stackhouse-export:v1:{}:{purpose}", self.export_id).into_bytes()
    }

    /// `nonce ‖ ciphertext+tag` of `plaintext` for `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let aad = self.aad(purpose);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| Error::internal("AES-GCM encryption failed"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// The plaintext, or None when the value is damaged, sealed for another purpose or export,
    /// or under another passphrase.
    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let aad = self.aad(purpose);
        self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: &aad }).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_passphrase_opens_and_binds_the_purpose() {
        let p = Passphrase::new("correct horse battery staple\n");
        let (sealer, sealing) = Sealer::create(&p, 1000, "exp1").unwrap();
        let sealed = sealer.seal("datakey:a", &[7; 32]).unwrap();
        let again = Sealer::open_export(&p, &sealing, "exp1").unwrap();
        assert_eq!(again.open("datakey:a", &sealed).unwrap(), vec![7; 32]);
        assert!(again.open("datakey:b", &sealed).is_none(), "another key id");
        let other_export = Sealer::open_export(&p, &sealing, "exp2");
        assert!(other_export.is_err(), "the check is bound to the export id");
        let mac = sealer.mac(b"manifest").unwrap();
        assert!(again.verify(b"manifest", &mac));
        assert!(!again.verify(b"manifest!", &mac), "another body");
        assert!(!again.verify(b"manifest", "not base64"));
    }

    #[test]
    fn a_wrong_or_short_passphrase_is_refused() {
        let (_, sealing) =
            Sealer::create(&Passphrase::new("correct horse battery"), 1000, "e").unwrap();
        let err = Sealer::open_export(&Passphrase::new("wrong horse battery"), &sealing, "e")
            .err()
            .unwrap();
        assert!(err.to_string().contains("wrong passphrase"), "{err}");
        assert!(Sealer::create(&Passphrase::new(" short "), 1000, "e").is_err());
        let mut huge = sealing.clone();
        huge.iterations = u32::MAX;
        assert!(Sealer::open_export(&Passphrase::new("x"), &huge, "e").is_err());
    }
}
