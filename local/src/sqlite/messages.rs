//! Message bodies, stored compressed with Snappy: a webhook's JSON (ids,
//! timestamps, the entity's snapshot) shrinks by about a third, and bodies
//! were a third of the data folder after 100,000 single writes. Packed
//! before the writer is taken, so the single writer never waits on it.
//! (Deflate saves more, but its compressor zeroes about 300 KB of tables
//! for each body: a burst of 100,000 ingested three times slower.)

use super::unavailable;
use lifecycle_core::ports::{Message, StoreError, StoreResult};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};

/// A message as the `messages` table holds it.
pub(super) struct Packed {
    id: String,
    body: Vec<u8>,
}

impl Packed {
    pub(super) fn of(message: &Message) -> Self {
        let body = snap::raw::Encoder::new()
            .compress_vec(message.body.as_bytes())
            .expect("a body is far below Snappy's 4 GB limit");
        Packed {
            id: message.id.clone(),
            body,
        }
    }

    pub(super) fn all(messages: &[Message]) -> Vec<Self> {
        messages.iter().map(Packed::of).collect()
    }
}

/// Stores a message unless one of its id is stored (the same webhook).
pub(super) fn insert(c: &Connection, message: &Packed) -> StoreResult<()> {
    c.prepare_cached("INSERT OR IGNORE INTO messages (id, body) VALUES (?1, ?2)")
        .and_then(|mut insert| insert.execute(params![message.id, message.body]))
        .map(drop)
        .map_err(unavailable)
}

/// The body of a stored message: compressed, or text (stored before
/// bodies were packed).
pub(super) fn body(c: &Connection, id: &str) -> StoreResult<Option<String>> {
    let mut statement = c
        .prepare_cached("SELECT body FROM messages WHERE id = ?1")
        .map_err(unavailable)?;
    statement
        .query_row([id], |row| {
            Ok(match row.get_ref(0)? {
                ValueRef::Text(text) => Ok(String::from_utf8_lossy(text).into_owned()),
                ValueRef::Blob(packed) => snap::raw::Decoder::new()
                    .decompress_vec(packed)
                    .map_err(unavailable)
                    .and_then(|text| String::from_utf8(text).map_err(unavailable)),
                _ => Err(StoreError::Unavailable(format!("message {id} has no body"))),
            })
        })
        .optional()
        .map_err(unavailable)?
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_comes_back_as_it_went_in_and_smaller_and_a_text_one_too() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE messages (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
            .unwrap();
        // A webhook as the traffic benchmark stores 100,000 of them.
        let text = serde_json::json!({"data": {"contract": {"custom_fields": {}, "customer_id": "c_500",
            "ending_before": "2028-01-02T11:30:39.463797124Z", "id": "k_500", "starting_at": "2027-01-02T11:30:39.463797124Z"},
            "contract_id": "k_500", "custom_fields": {}, "customer_id": "c_500", "event_time": "2026-12-03T11:30:39.463797124Z",
            "late": false, "notification_id": "ntf_system_contract_create", "occurred_at": "2026-12-03T11:30:39.463797124Z",
            "offset": "PT0S", "scheduled_for": "2026-12-03T11:30:39.472194316Z", "version": 1},
            "id": "msg_31d84c95058937df1ad110efbbb52cce", "timestamp": "2026-12-03T11:30:39.472194316Z", "type": "contract.create"})
        .to_string();
        let message = Message {
            id: "msg_1".into(),
            body: text.clone(),
        };
        let packed = Packed::of(&message);
        assert!(
            packed.body.len() * 10 < text.len() * 8,
            "{} of {}",
            packed.body.len(),
            text.len()
        );
        insert(&c, &packed).unwrap();
        assert_eq!(body(&c, "msg_1").unwrap().as_deref(), Some(text.as_str()));
        c.execute(
            "INSERT INTO messages (id, body) VALUES ('msg_old', 'plain')",
            [],
        )
        .unwrap();
        assert_eq!(body(&c, "msg_old").unwrap().as_deref(), Some("plain"));
        assert_eq!(body(&c, "msg_none").unwrap(), None);
    }
}
