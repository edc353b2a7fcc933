//! An independent Standard Webhooks verifier (https://www.standardwebhooks.com):
//! `webhook-signature` holds space-separated `v1,<base64 HMAC-SHA256>` of
//! `"{id}.{timestamp}.{body}"`, keyed by the base64-decoded part of the secret
//! after `whsec_`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `v1,...` signature of one message.
pub fn sign(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .expect("the secret is whsec_ + base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// True when one of the header's space-separated signatures matches.
pub fn verify(secret: &str, id: &str, timestamp: &str, header: &str, body: &[u8]) -> bool {
    let expected = sign(secret, id, timestamp, body);
    header.split(' ').any(|candidate| candidate == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_published_vector_signs_and_verifies() {
        assert_eq!(sign(SECRET, ID, TS, BODY), SIGNATURE);
        assert!(verify(SECRET, ID, TS, SIGNATURE, BODY));
        assert!(verify(
            SECRET,
            ID,
            TS,
            &format!("v1,bm9wZQ== {SIGNATURE}"),
            BODY
        ));
    }

    #[test]
    fn any_change_breaks_it() {
        assert!(!verify(SECRET, ID, "1614265331", SIGNATURE, BODY));
        assert!(!verify(SECRET, "msg_other", TS, SIGNATURE, BODY));
        assert!(!verify(
            SECRET,
            ID,
            TS,
            SIGNATURE,
            br#"{"test": 2432232315}"#
        ));
        assert!(!verify(
            "whsec_bm90IHRoZSBzZWNyZXQ=",
            ID,
            TS,
            SIGNATURE,
            BODY
        ));
        assert!(!verify(SECRET, ID, TS, "", BODY));
    }
}
