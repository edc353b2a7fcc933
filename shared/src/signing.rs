//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "{id}.{ts}.{body}">`
//! keyed by the base64-decoded part of a `whsec_` secret.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "whsec_";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the secret is not `whsec_` followed by base64")]
    BadSecret,
    #[error("the timestamp is not unix seconds")]
    BadTimestamp,
    #[error("the timestamp is outside the tolerance")]
    Expired,
    #[error("no signature matches")]
    NoMatch,
}

/// A fresh secret: `whsec_` and 32 random bytes in base64.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", B64.encode(bytes))
}

fn key(secret: &str) -> Result<Vec<u8>, SignatureError> {
    let encoded = secret.strip_prefix(PREFIX).unwrap_or(secret);
    let key = B64.decode(encoded).map_err(|_| SignatureError::BadSecret)?;
    if key.is_empty() {
        return Err(SignatureError::BadSecret);
    }
    Ok(key)
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// One `v1,...` signature.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
    let digest = mac(&key(secret)?, id, timestamp, body)
        .finalize()
        .into_bytes();
    Ok(format!("v1,{}", B64.encode(digest)))
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[&str],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SignatureError> {
    let signatures = secrets
        .iter()
        .map(|secret| sign(secret, id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(signatures.join(" "))
}

/// Checks the headers of a received webhook against a secret, in constant
/// time per signature. Receivers should also bound the timestamp: see
/// [`verify_with_tolerance`].
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
) -> Result<(), SignatureError> {
    let key = key(secret)?;
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let matches = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|encoded| {
            B64.decode(encoded).is_ok_and(|expected| {
                mac(&key, id, timestamp, body)
                    .verify_slice(&expected)
                    .is_ok()
            })
        });
    matches.then_some(()).ok_or(SignatureError::NoMatch)
}

/// [`verify`], and the timestamp within `tolerance_secs` of `now_unix`
/// either way (the reference libraries use 300 s), against replays.
pub fn verify_with_tolerance(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if (now_unix - sent).abs() > tolerance_secs {
        return Err(SignatureError::Expired);
    }
    verify(secret, id, timestamp, signatures, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: (&str, &str, i64, &str, &str) = (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        r#"{"test": 2432232314}"#,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );
    const B: (&str, &str, i64, &str, &str) = (
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        1649367553,
        r#"{"email":"test@example.com","username":"test_user"}"#,
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
    );

    #[test]
    fn published_vectors_sign_and_verify() {
        for (secret, id, ts, body, expected) in [A, B] {
            assert_eq!(sign(secret, id, ts, body.as_bytes()).unwrap(), expected);
            verify(secret, id, &ts.to_string(), expected, body.as_bytes()).unwrap();
        }
    }

    #[test]
    fn wrong_signatures_fail() {
        let (secret, id, ts, body, good) = B;
        let ts = ts.to_string();
        let bad = "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=";
        assert_eq!(
            verify(secret, id, &ts, bad, body.as_bytes()),
            Err(SignatureError::NoMatch)
        );
        let truncated = &good[..good.len() - 4];
        assert_eq!(
            verify(secret, id, &ts, truncated, body.as_bytes()),
            Err(SignatureError::NoMatch)
        );
        let (a_secret, a_id, a_ts, a_body, _) = A;
        let changed = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
        assert!(verify(
            a_secret,
            a_id,
            &a_ts.to_string(),
            changed,
            a_body.as_bytes()
        )
        .is_err());
        assert_eq!(
            verify("", id, &ts, good, body.as_bytes()),
            Err(SignatureError::BadSecret)
        );
        assert_eq!(
            verify("whsec_", id, &ts, good, body.as_bytes()),
            Err(SignatureError::BadSecret)
        );
        assert_eq!(
            verify(secret, id, &ts, good, b"{}"),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn one_good_signature_among_several_is_enough() {
        let (secret, id, ts, body, good) = B;
        let header = format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,x {good}");
        verify(secret, id, &ts.to_string(), &header, body.as_bytes()).unwrap();
    }

    #[test]
    fn rotation_header_carries_both_signatures() {
        let old = generate_secret();
        let new = generate_secret();
        let header = signature_header(&[&new, &old], "msg_1", 1, b"{}").unwrap();
        assert_eq!(header.split(' ').count(), 2);
        verify(&old, "msg_1", "1", &header, b"{}").unwrap();
        verify(&new, "msg_1", "1", &header, b"{}").unwrap();
    }

    #[test]
    fn tolerance_bounds_the_timestamp() {
        let (secret, id, ts, body, good) = A;
        verify_with_tolerance(
            secret,
            id,
            &ts.to_string(),
            good,
            body.as_bytes(),
            ts + 299,
            300,
        )
        .unwrap();
        let late = verify_with_tolerance(
            secret,
            id,
            &ts.to_string(),
            good,
            body.as_bytes(),
            ts + 301,
            300,
        );
        assert_eq!(late, Err(SignatureError::Expired));
    }
}
