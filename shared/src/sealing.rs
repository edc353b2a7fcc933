//! Endpoint signing secrets sealed at rest under a main key: whoever reads
//! the database (or a backup of it) without the key learns no secret, and a
//! sealed value changed by anyone without the key fails to open. The cipher
//! is XChaCha20-Poly1305 (authenticated, with a random 192-bit nonce per
//! seal, so nonces never need counting).

use crate::endpoint::Endpoint;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What a sealed value starts with; a value without it is plain (written
/// before secrets were sealed).
const SEALED: &str = "sealed:v1:";
const NONCE_LEN: usize = 24;

/// A 256-bit main key, written as 64 hex digits.
#[derive(Clone)]
pub struct MainKey([u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SealingError {
    #[error("a main key is 64 hex digits (32 bytes)")]
    BadKey,
    #[error("a sealed secret did not open: wrong main key, or the value was changed")]
    WontOpen,
}

impl std::fmt::Debug for MainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MainKey({})", self.fingerprint())
    }
}

impl MainKey {
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        MainKey(key)
    }

    /// From its text (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, SealingError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(SealingError::BadKey);
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|_| SealingError::BadKey)?;
        }
        Ok(MainKey(key))
    }

    /// From a secret's text: 64 hex digits as they are, or any other text
    /// of at least 32 characters (a generated password, as Secrets Manager
    /// makes one) through SHA-256.
    pub fn from_secret(text: &str) -> Result<Self, SealingError> {
        if let Ok(key) = MainKey::parse(text) {
            return Ok(key);
        }
        let text = text.trim();
        if text.len() < 32 {
            return Err(SealingError::BadKey);
        }
        let digest = Sha256::new()
            .chain_update(b"lifecycle main key\0")
            .chain_update(text.as_bytes())
            .finalize();
        Ok(MainKey(digest.into()))
    }

    pub fn to_text(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Names the key without revealing it: the first 8 bytes of a hash,
    /// kept beside the sealed values to tell a wrong key before any write.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"lifecycle main key fingerprint\0")
            .chain_update(self.0)
            .finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }

    pub fn seal(&self, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), plain.as_bytes())
            .expect("encrypting to memory cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("{SEALED}{}", STANDARD.encode(bytes))
    }

    /// The plain text of a value `seal` made; a plain value as it is.
    pub fn open(&self, value: &str) -> Result<String, SealingError> {
        let Some(encoded) = value.strip_prefix(SEALED) else {
            return Ok(value.to_string());
        };
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| SealingError::WontOpen)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealingError::WontOpen);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher()
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| SealingError::WontOpen)?;
        String::from_utf8(plain).map_err(|_| SealingError::WontOpen)
    }

    /// The endpoint with every secret sealed (sealed ones kept as they are).
    pub fn seal_endpoint(&self, endpoint: &Endpoint) -> Endpoint {
        let mut sealed = endpoint.clone();
        for secret in &mut sealed.secrets {
            if !is_sealed(&secret.value) {
                secret.value = self.seal(&secret.value);
            }
        }
        sealed
    }

    /// The endpoint with every secret opened.
    pub fn open_endpoint(&self, mut endpoint: Endpoint) -> Result<Endpoint, SealingError> {
        for secret in &mut endpoint.secrets {
            secret.value = self.open(&secret.value)?;
        }
        Ok(endpoint)
    }
}

pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED)
}

/// An endpoint as a store writes it: its secrets sealed when there is a key.
pub fn sealed(key: Option<&MainKey>, endpoint: &Endpoint) -> Endpoint {
    match key {
        Some(key) => key.seal_endpoint(endpoint),
        None => endpoint.clone(),
    }
}

/// An endpoint as a store read it: its secrets opened when there is a key
/// (a plain one, written before there was a key, as it is).
pub fn opened(key: Option<&MainKey>, endpoint: Endpoint) -> Result<Endpoint, SealingError> {
    match key {
        Some(key) => key.open_endpoint(endpoint),
        None => Ok(endpoint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_under_its_key_and_unchanged() {
        let key = MainKey::generate();
        let sealed = key.seal("whsec_abc");
        assert!(is_sealed(&sealed) && !sealed.contains("whsec_abc"));
        assert_ne!(sealed, key.seal("whsec_abc"), "a fresh nonce each time");
        assert_eq!(key.open(&sealed).unwrap(), "whsec_abc");
        assert_eq!(
            MainKey::generate().open(&sealed),
            Err(SealingError::WontOpen)
        );
        let mut changed = sealed.clone().into_bytes();
        let last = changed.len() - 3;
        changed[last] = if changed[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            key.open(&String::from_utf8(changed).unwrap()),
            Err(SealingError::WontOpen)
        );
        assert_eq!(key.open("whsec_plain").unwrap(), "whsec_plain");
    }

    #[test]
    fn a_key_reads_back_from_its_text_and_keeps_its_fingerprint() {
        let key = MainKey::generate();
        let again = MainKey::parse(&format!(" {}\n", key.to_text())).unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint());
        assert_ne!(MainKey::generate().fingerprint(), key.fingerprint());
        assert!(!format!("{key:?}").contains(&key.to_text()));
        assert_eq!(MainKey::parse("00").err(), Some(SealingError::BadKey));
        let hex = MainKey::from_secret(&key.to_text()).unwrap();
        assert_eq!(hex.fingerprint(), key.fingerprint());
        let password = "p".repeat(48);
        let derived = MainKey::from_secret(&password).unwrap();
        assert_eq!(
            derived.fingerprint(),
            MainKey::from_secret(&password).unwrap().fingerprint()
        );
        assert_eq!(
            MainKey::from_secret("short").err(),
            Some(SealingError::BadKey)
        );
        assert_eq!(
            MainKey::parse(&"zz".repeat(32)).err(),
            Some(SealingError::BadKey)
        );
    }
}
