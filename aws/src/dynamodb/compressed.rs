//! Texts stored gzipped: message bodies (a payload carries its entity, a
//! commit with twelve segments is about 3 KB of JSON, which shrinks to
//! about a third, under 1 KB) and the records of the items written by the
//! million (`keys::packed`). Every started KB of an item costs a write unit
//! and its storage is billed by the byte.

use super::unavailable;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use lifecycle_core::ports::{StoreError, StoreResult};
use std::io::{Read, Write};

/// The attribute holding a gzipped text.
pub(crate) fn pack(text: &str) -> AttributeValue {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail.
    encoder.write_all(text.as_bytes()).expect("in memory");
    AttributeValue::B(Blob::new(encoder.finish().expect("in memory")))
}

/// The text of an attribute `pack` made, or a plain string (items written
/// before bodies were compressed).
pub(crate) fn unpack(value: &AttributeValue) -> StoreResult<String> {
    match value {
        AttributeValue::S(text) => Ok(text.clone()),
        AttributeValue::B(blob) => {
            let mut text = String::new();
            GzDecoder::new(blob.as_ref())
                .read_to_string(&mut text)
                .map_err(unavailable)?;
            Ok(text)
        }
        _ => Err(StoreError::Unavailable(
            "a stored text is neither a string nor gzip".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_comes_back_as_it_went_in_and_smaller() {
        let body = serde_json::json!({"segments": (0..12).map(|m| serde_json::json!({
            "id": format!("seg_{m}"), "starting_at": "2027-01-01T00:00:00Z", "amount": 1000}))
            .collect::<Vec<_>>()})
        .to_string();
        let packed = pack(&body);
        let AttributeValue::B(blob) = &packed else {
            panic!("binary")
        };
        assert!(
            blob.as_ref().len() * 2 < body.len(),
            "{} of {}",
            blob.as_ref().len(),
            body.len()
        );
        assert_eq!(unpack(&packed).unwrap(), body);
        assert_eq!(unpack(&AttributeValue::S("old".into())).unwrap(), "old");
        assert!(unpack(&AttributeValue::N("1".into())).is_err());
    }
}
