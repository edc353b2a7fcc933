//! Contracts, commits and credits as billing sends them, and the record we
//! keep of each: the last snapshot, its version and whether it is archived.

use crate::error::ApiError;
use crate::fields::Fields;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    Contract,
    Commit,
    Credit,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Contract => "contract",
            EntityKind::Commit => "commit",
            EntityKind::Credit => "credit",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Contract, Self::Commit, Self::Credit]
            .into_iter()
            .find(|k| k.as_str() == text)
    }

    /// The payload field that carries this kind's id: `contract_id`, ...
    pub fn id_field(self) -> &'static str {
        match self {
            EntityKind::Contract => "contract_id",
            EntityKind::Commit => "commit_id",
            EntityKind::Credit => "credit_id",
        }
    }
}

/// Ids are unique per kind, so a key is both.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntityKey {
    pub kind: EntityKind,
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub id: String,
    pub starting_at: Time,
    pub ending_before: Time,
    pub amount: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    pub id: String,
    pub customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub starting_at: Time,
    pub ending_before: Option<Time>,
    #[serde(default)]
    pub custom_fields: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitType {
    Prepaid,
    Postpaid,
}

/// A commit or a credit: both are an access schedule of segments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only commits have a type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub commit_type: Option<CommitType>,
    pub access_schedule: Vec<Segment>,
    #[serde(default)]
    pub custom_fields: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Entity {
    Contract(Contract),
    Commit(Grant),
    Credit(Grant),
}

impl Entity {
    pub fn kind(&self) -> EntityKind {
        match self {
            Entity::Contract(_) => EntityKind::Contract,
            Entity::Commit(_) => EntityKind::Commit,
            Entity::Credit(_) => EntityKind::Credit,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Entity::Contract(c) => &c.id,
            Entity::Commit(g) | Entity::Credit(g) => &g.id,
        }
    }

    pub fn key(&self) -> EntityKey {
        EntityKey {
            kind: self.kind(),
            id: self.id().to_string(),
        }
    }

    pub fn customer_id(&self) -> &str {
        match self {
            Entity::Contract(c) => &c.customer_id,
            Entity::Commit(g) | Entity::Credit(g) => &g.customer_id,
        }
    }

    pub fn contract_id(&self) -> Option<&str> {
        match self {
            Entity::Contract(c) => Some(&c.id),
            Entity::Commit(g) | Entity::Credit(g) => g.contract_id.as_deref(),
        }
    }

    pub fn custom_fields(&self) -> &BTreeMap<String, String> {
        match self {
            Entity::Contract(c) => &c.custom_fields,
            Entity::Commit(g) | Entity::Credit(g) => &g.custom_fields,
        }
    }

    /// The entity as JSON, in the shape billing sent it.
    pub fn snapshot(&self) -> Value {
        let value = match self {
            Entity::Contract(c) => serde_json::to_value(c),
            Entity::Commit(g) | Entity::Credit(g) => serde_json::to_value(g),
        };
        value.expect("entities serialize")
    }

    /// Reads and validates an entity snapshot of the given kind.
    pub fn parse(kind: EntityKind, value: &Value) -> Result<Entity, ApiError> {
        let f = Fields::of(value, "data")?;
        let id = f.id("id")?;
        let customer_id = f.id("customer_id")?;
        let name = f.optional_string("name")?;
        let custom_fields = f.string_map("custom_fields")?;
        Ok(match kind {
            EntityKind::Contract => {
                let starting_at = f.time("starting_at")?;
                let ending_before = f.optional_time("ending_before")?;
                if ending_before.is_some_and(|end| end <= starting_at) {
                    return Err(ApiError::invalid(
                        "ending_before",
                        "`ending_before` must be after `starting_at`",
                    ));
                }
                Entity::Contract(Contract {
                    id,
                    customer_id,
                    name,
                    starting_at,
                    ending_before,
                    custom_fields,
                })
            }
            EntityKind::Commit | EntityKind::Credit => {
                let contract_id = f.optional_id("contract_id")?;
                let commit_type = if kind == EntityKind::Commit {
                    Some(match f.string("type")?.as_str() {
                        "prepaid" => CommitType::Prepaid,
                        "postpaid" => CommitType::Postpaid,
                        other => {
                            return Err(ApiError::invalid(
                                "type",
                                format!("`type` must be prepaid or postpaid, not `{other}`"),
                            ))
                        }
                    })
                } else {
                    None
                };
                let access_schedule = parse_segments(f.array("access_schedule")?)?;
                let grant = Grant {
                    id,
                    customer_id,
                    contract_id,
                    name,
                    commit_type,
                    access_schedule,
                    custom_fields,
                };
                if kind == EntityKind::Commit {
                    Entity::Commit(grant)
                } else {
                    Entity::Credit(grant)
                }
            }
        })
    }
}

fn parse_segments(items: &[Value]) -> Result<Vec<Segment>, ApiError> {
    let mut seen = HashSet::new();
    let mut segments = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("access_schedule[{i}]");
        let segment = parse_segment(item).map_err(|e| e.under(&path))?;
        if !seen.insert(segment.id.clone()) {
            return Err(ApiError::invalid(
                format!("{path}.id"),
                format!("segment id `{}` is used twice", segment.id),
            ));
        }
        segments.push(segment);
    }
    Ok(segments)
}

fn parse_segment(item: &Value) -> Result<Segment, ApiError> {
    let f = Fields::of(item, "")?;
    let segment = Segment {
        id: f.id("id")?,
        starting_at: f.time("starting_at")?,
        ending_before: f.time("ending_before")?,
        amount: f.amount("amount")?,
    };
    if segment.ending_before <= segment.starting_at {
        return Err(ApiError::invalid(
            "ending_before",
            "`ending_before` must be after `starting_at`",
        ));
    }
    Ok(segment)
}

/// What we keep of an entity: its latest snapshot and how it got there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityRecord {
    pub entity: Entity,
    /// Counts the writes applied: 1 after the create.
    pub version: u64,
    /// `occurred_at` of the last applied write, which orders writes.
    pub occurred_at: Time,
    pub archived_at: Option<Time>,
}

impl EntityRecord {
    pub fn key(&self) -> EntityKey {
        self.entity.key()
    }

    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_contract_round_trips_its_shape() {
        let data = json!({"id": "k_1", "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00+01:00",
                          "ending_before": null, "custom_fields": {"tier": "gold"}});
        let entity = Entity::parse(EntityKind::Contract, &data).unwrap();
        assert_eq!(
            entity.snapshot(),
            json!({"id": "k_1", "customer_id": "c_1", "starting_at": "2025-12-31T23:00:00Z",
                   "ending_before": null, "custom_fields": {"tier": "gold"}})
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (
                EntityKind::Contract,
                json!({"customer_id": "c", "starting_at": "2026-01-01T00:00:00Z"}),
                "id",
            ),
            (
                EntityKind::Contract,
                json!({"id": 5, "customer_id": "c", "starting_at": "2026-01-01T00:00:00Z"}),
                "id",
            ),
            (
                EntityKind::Contract,
                json!({"id": "k", "customer_id": "c", "starting_at": "soon"}),
                "starting_at",
            ),
            (
                EntityKind::Contract,
                json!({"id": "k", "customer_id": "c", "starting_at": "2026-01-02T00:00:00Z", "ending_before": "2026-01-02T00:00:00Z"}),
                "ending_before",
            ),
            (
                EntityKind::Commit,
                json!({"id": "m", "customer_id": "c", "type": "gift", "access_schedule": []}),
                "type",
            ),
            (
                EntityKind::Credit,
                json!({"id": "m", "customer_id": "c", "access_schedule": [
                    {"id": "s1", "starting_at": "2026-01-01T00:00:00Z", "ending_before": "2026-02-01T00:00:00Z", "amount": 1},
                    {"id": "s1", "starting_at": "2026-02-01T00:00:00Z", "ending_before": "2026-03-01T00:00:00Z", "amount": 1}]}),
                "access_schedule[1].id",
            ),
            (
                EntityKind::Credit,
                json!({"id": "m", "customer_id": "c", "access_schedule": [
                    {"id": "s1", "starting_at": "2026-01-01T00:00:00Z", "ending_before": "2026-02-01T00:00:00Z", "amount": -1}]}),
                "access_schedule[0].amount",
            ),
            (
                EntityKind::Contract,
                json!({"id": "k", "customer_id": "c", "starting_at": "2026-01-01T00:00:00Z", "custom_fields": {"a": 1}}),
                "custom_fields.a",
            ),
        ];
        for (kind, data, field) in cases {
            let error = Entity::parse(kind, &data).unwrap_err();
            assert_eq!(error.status, 422, "{data}");
            assert_eq!(error.field.as_deref(), Some(field), "{data}: {error}");
        }
    }
}
