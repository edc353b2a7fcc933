//! Reading the table's stream: which timer change a schedule or delivery
//! item's change comes to, and which notification changes start a fan-out.
//! Pure, so the rules are unit-tested here.

use aws_lambda_events::event::dynamodb::EventRecord;
use lifecycle_core::notification::Notification;
use lifecycle_core::planner::TimerChange;
use lifecycle_core::time::{parse_time, Time};
use serde::Deserialize;

/// The attributes of an item the stream handler reads (the rest are ignored).
#[derive(Debug, Default, Deserialize)]
pub struct Image {
    pub t: Option<String>,
    pub pk: Option<String>,
    pub sk: Option<String>,
    /// Schedule or delivery state.
    pub st: Option<String>,
    /// A schedule's fire time.
    pub fa: Option<String>,
    /// A delivery's next attempt.
    pub nxt: Option<String>,
    /// The core's record as JSON, where stored as text (those of entities,
    /// schedules, deliveries and attempts are gzipped binary, which the
    /// stream handler has no use for).
    #[serde(default, deserialize_with = "text_only")]
    pub r: Option<String>,
    /// A fan-out job's generation and cursor (`fanout`).
    pub gen: Option<String>,
    pub after: Option<String>,
    pub exists: Option<bool>,
    pub ntf: Option<String>,
}

/// A string, or nothing for a value of any other type: one binary attribute
/// must not make the whole image unreadable.
fn text_only<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Text(String),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Text(text) => Some(text),
        Stored::Other(_) => None,
    })
}

pub fn image(item: &serde_dynamo::Item) -> Image {
    if item.is_empty() {
        return Image::default();
    }
    serde_dynamo::from_item(item.clone()).unwrap_or_default()
}

/// What one stream record asks of the `schedule` function.
#[derive(Debug, PartialEq)]
pub enum Work {
    Timer(TimerChange),
    /// A notification was written (`exists`) or deleted: re-plan its entities.
    FanOut {
        notification: Box<Notification>,
        exists: bool,
        gen: String,
    },
    /// The next page of a running fan-out job (its item changed).
    Job {
        notification_id: String,
        gen: String,
        after: Option<String>,
    },
    Nothing,
}

fn pending_at(image: &Image, field: fn(&Image) -> &Option<String>) -> Option<Time> {
    if image.st.as_deref() != Some("pending") {
        return None;
    }
    field(image).as_deref().and_then(parse_time)
}

/// The timer change of a schedule (`SCH`) item's change:
/// - pending at a new time within the horizon: set (create or move);
/// - pending beyond the horizon: nothing (the sweep registers it), unless it
///   was set before (moved out of the horizon): clear;
/// - pending at the same time as before: nothing;
/// - cancelled or removed while pending: clear; fired or skipped: nothing
///   (EventBridge deletes a schedule after its invocation).
fn schedule_change(old: &Image, new: &Image, within: &dyn Fn(Time) -> bool) -> Option<TimerChange> {
    let id = new
        .sk
        .as_ref()
        .or(old.sk.as_ref())?
        .rsplit('#')
        .next()?
        .to_string();
    let before = pending_at(old, |i| &i.fa);
    match pending_at(new, |i| &i.fa) {
        Some(at) if before == Some(at) => None,
        Some(at) if within(at) => Some(TimerChange::Set { id, at }),
        Some(_) => before
            .filter(|b| within(*b))
            .map(|_| TimerChange::Clear { id }),
        None => {
            let cancelled = new.t.is_none() || new.st.as_deref() == Some("cancelled");
            (before.is_some() && cancelled).then_some(TimerChange::Clear { id })
        }
    }
}

/// The timer change of a delivery (`DLV`) item's change: pending at a new
/// next-attempt time (made, retried, leased for an attempt, resent): set.
/// Finished deliveries need nothing: a timer still out finds nothing due.
/// A delivery a fire made is written leased to the firing invocation,
/// which attempts it at once: its timer, at the lease's end, is the retry
/// should that invocation die.
fn delivery_change(old: &Image, new: &Image, within: &dyn Fn(Time) -> bool) -> Option<TimerChange> {
    let id = new.pk.as_ref()?.strip_prefix("D#")?.to_string();
    let at = pending_at(new, |i| &i.nxt)?;
    if pending_at(old, |i| &i.nxt) == Some(at) || !within(at) {
        return None;
    }
    Some(TimerChange::Set { id, at })
}

/// What a stream record comes to. `within(at)`: whether a timer due at `at`
/// is registered now (the horizon). Item types other than schedules,
/// deliveries, notifications and fan-out jobs are nothing (the template's
/// filter already keeps most of them out; tests feed every record).
pub fn work(record: &EventRecord, within: &dyn Fn(Time) -> bool) -> Work {
    let old = image(&record.change.old_image);
    let new = image(&record.change.new_image);
    let kind = new.t.as_deref().or(old.t.as_deref()).unwrap_or_default();
    let timer = match kind {
        "SCH" => schedule_change(&old, &new, within),
        "DLV" => delivery_change(&old, &new, within),
        "NTF" => {
            let exists = new.t.is_some();
            let source = if exists { &new } else { &old };
            let Some(notification) = source
                .r
                .as_deref()
                .and_then(|r| serde_json::from_str::<Notification>(r).ok())
            else {
                return Work::Nothing;
            };
            let gen = match exists {
                true => notification.updated_at.to_rfc3339(),
                false => format!("deleted-{}", record.event_id),
            };
            return Work::FanOut {
                notification: Box::new(notification),
                exists,
                gen,
            };
        }
        "JOB" if new.t.is_some() => {
            return match (new.ntf, new.gen) {
                (Some(notification_id), Some(gen)) => Work::Job {
                    notification_id,
                    gen,
                    after: new.after,
                },
                _ => Work::Nothing,
            }
        }
        _ => None,
    };
    timer.map(Work::Timer).unwrap_or(Work::Nothing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn record(name: &str, old: Value, new: Value) -> EventRecord {
        serde_json::from_value(json!({
            "eventID": "1", "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {"ApproximateCreationDateTime": 1.7e9, "Keys": {}, "NewImage": new, "OldImage": old,
                         "SequenceNumber": "1", "SizeBytes": 1, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x"
        }))
        .unwrap()
    }

    fn sch(st: &str, fa: &str) -> Value {
        json!({"pk": {"S": "E#contract#k_1"}, "sk": {"S": "S#ntf_1#sch_1"}, "t": {"S": "SCH"},
               "st": {"S": st}, "fa": {"S": fa}})
    }

    fn t(text: &str) -> Time {
        parse_time(text).unwrap()
    }

    const SOON: &str = "2026-12-01T00:00:00.000Z";
    const LATER: &str = "2026-12-02T00:00:00.000Z";
    const FAR: &str = "2027-06-01T00:00:00.000Z";

    fn within(at: Time) -> bool {
        at < t("2027-01-01T00:00:00Z")
    }

    #[test]
    fn schedules() {
        let set = |at: &str| {
            Work::Timer(TimerChange::Set {
                id: "sch_1".into(),
                at: t(at),
            })
        };
        let clear = Work::Timer(TimerChange::Clear { id: "sch_1".into() });
        assert_eq!(
            work(&record("INSERT", json!({}), sch("pending", SOON)), &within),
            set(SOON)
        );
        let moved = record("MODIFY", sch("pending", SOON), sch("pending", LATER));
        assert_eq!(work(&moved, &within), set(LATER));
        let same = record("MODIFY", sch("pending", SOON), sch("pending", SOON));
        assert_eq!(work(&same, &within), Work::Nothing);
        let far = record("INSERT", json!({}), sch("pending", FAR));
        assert_eq!(work(&far, &within), Work::Nothing);
        let out = record("MODIFY", sch("pending", SOON), sch("pending", FAR));
        assert_eq!(work(&out, &within), clear);
        let cancelled = record("MODIFY", sch("pending", SOON), sch("cancelled", SOON));
        assert_eq!(work(&cancelled, &within), clear);
        let removed = record("REMOVE", sch("pending", SOON), json!({}));
        assert_eq!(work(&removed, &within), clear);
        let fired = record("MODIFY", sch("pending", SOON), sch("fired", SOON));
        assert_eq!(work(&fired, &within), Work::Nothing);
    }

    #[test]
    fn deliveries_and_other_items() {
        let dlv = |st: &str, nxt: &str| json!({"pk": {"S": "D#dlv_1"}, "sk": {"S": "D"}, "t": {"S": "DLV"}, "st": {"S": st}, "nxt": {"S": nxt}});
        let retry = record("MODIFY", dlv("pending", SOON), dlv("pending", LATER));
        assert_eq!(
            work(&retry, &within),
            Work::Timer(TimerChange::Set {
                id: "dlv_1".into(),
                at: t(LATER)
            })
        );
        let mut packed = dlv("pending", LATER);
        packed["r"] = json!({"B": "H4sIAAAAAAAA/6uuBQBDv6ajAgAAAA=="});
        let retry = record("MODIFY", dlv("pending", SOON), packed);
        assert!(
            matches!(work(&retry, &within), Work::Timer(TimerChange::Set { .. })),
            "a gzipped record does not hide the retry's timer"
        );
        let done = record("MODIFY", dlv("pending", SOON), dlv("delivered", SOON));
        assert_eq!(work(&done, &within), Work::Nothing);
        let leased = record("INSERT", json!({}), dlv("pending", LATER));
        assert!(
            matches!(work(&leased, &within), Work::Timer(_)),
            "the lease's wake-up"
        );
        let entity = record(
            "INSERT",
            json!({}),
            json!({"pk": {"S": "E#contract#k_1"}, "sk": {"S": "#"}, "t": {"S": "ENT"}, "v": {"N": "1"}}),
        );
        assert_eq!(work(&entity, &within), Work::Nothing);
    }
}
