//! Prefixed ids: random ones for things users create, hashed ones where the
//! same inputs must always give the same id (schedules, webhooks, deliveries).

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A random id such as `ep_3f9a...`, for objects created through the API.
pub fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex(&bytes))
}

/// A deterministic id: the same parts always give the same id. Parts are
/// length-prefixed before hashing so `["a/b", "c"]` and `["a", "b/c"]` differ.
pub fn hashed_id(prefix: &str, parts: &[&str]) -> String {
    format!("{prefix}_{}", digest(parts))
}

/// 32 hex characters of SHA-256 over the length-prefixed parts.
pub fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize()[..16])
}

/// Lower-case hex; by table, as ids are made for every moment planned.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(DIGITS[(b >> 4) as usize] as char);
        text.push(DIGITS[(b & 0xf) as usize] as char);
    }
    text
}

/// Re-prefix a hashed id: a schedule `sch_<h>` and its webhook `msg_<h>` share `<h>`.
pub fn with_prefix(id: &str, prefix: &str) -> String {
    let hash = id.split_once('_').map_or(id, |(_, rest)| rest);
    format!("{prefix}_{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_ids_are_stable_and_unambiguous() {
        assert_eq!(hashed_id("msg", &["a", "b"]), hashed_id("msg", &["a", "b"]));
        assert_ne!(
            hashed_id("msg", &["a/b", "c"]),
            hashed_id("msg", &["a", "b/c"])
        );
        assert_eq!(hashed_id("msg", &["x"]).len(), 4 + 32);
    }

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(random_id("ep"), random_id("ep"));
        assert!(random_id("ep").starts_with("ep_"));
    }

    #[test]
    fn reprefix_keeps_the_hash() {
        assert_eq!(with_prefix("sch_abc", "msg"), "msg_abc");
    }
}
