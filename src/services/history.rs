//! An aggregate's change history: its events replayed one by one, with what each changed.
//!
//! Generic over the aggregate: the state is folded event by event with the aggregate's own
//! `apply`, and the JSON of the state before and after each event is compared leaf by leaf
//! (objects are walked, arrays and scalars are leaves, a missing leaf is `null`). "From"
//! values therefore come from the replay, never from the events. What is shown comes from a
//! caller-given `view` of the state (e.g. secrets masked) while what counts as a change comes
//! from the full state, so a secret that changed shows as changed with both sides masked.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::db::Database;

/// One field an event changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldChange {
    /// Dotted path of the field in the state, e.g. `name`, `details.phone`, `provider.app_id`.
    pub field: String,
    /// Its value before the event (`null`: not set).
    #[schema(value_type = Object)]
    pub from: Value,
    /// Its value after the event.
    #[schema(value_type = Object)]
    pub to: Value,
    /// The value is hidden (e.g. a secret): it changed, but `from` and `to` are masked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

/// One event of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    /// The event's sequence within the aggregate, from 1.
    pub sequence: i64,
    /// When it was recorded.
    pub at: Option<DateTime<Utc>>,
    /// Its stable event type.
    pub event_type: String,
    /// Who caused it (`admin:label`, `agent:id`, `system:worker`...).
    pub caused_by: Option<String>,
    /// What it changed, by field.
    pub changes: Vec<FieldChange>,
}

/// Why a history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The store failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A stored event does not decode as the aggregate's event type.
    #[error("event #{sequence} cannot be decoded: {source}")]
    Decode {
        /// Its sequence.
        sequence: i64,
        /// Why.
        source: serde_json::Error,
    },
}

/// The history of aggregate `A` with id `id`, oldest first (empty when it has no events).
/// `view` turns a state into what may be shown (same shape as its JSON, secrets masked).
pub async fn history<A>(
    db: &Database,
    pii: &crate::pii::Pii,
    id: &str,
    view: impl Fn(&A) -> Value,
) -> Result<Vec<HistoryEntry>, HistoryError>
where
    A: Aggregate + Default + Serialize,
{
    let events = crate::audit::events::read(db, pii, A::TYPE, id, crate::audit::events::Upto::All).await?;
    let mut state = A::default();
    let mut entries = Vec::with_capacity(events.len());
    for stored in events {
        let sequence = stored.sequence;
        let event: A::Event = serde_json::from_value(stored.payload)
            .map_err(|source| HistoryError::Decode { sequence, source })?;
        let metadata = stored.metadata;
        let (raw_before, view_before) = (to_json(&state), view(&state));
        state.apply(event);
        let (raw_after, view_after) = (to_json(&state), view(&state));
        entries.push(HistoryEntry {
            sequence,
            at: metadata["occurred_at"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc)),
            event_type: stored.event_type,
            caused_by: metadata["caused_by"].as_str().map(str::to_owned),
            changes: diff(&raw_before, &raw_after, &view_before, &view_after),
        });
    }
    Ok(entries)
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The leaves of a JSON value by dotted path (objects walked; arrays and scalars are leaves).
fn leaves(value: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&path, v, out);
                }
            }
            // An empty object is nothing set: it compares equal to a missing leaf.
            Value::Object(_) => {}
            other => {
                out.insert(prefix.to_owned(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}

/// The changed leaves between two states: which leaves differ is decided on the raw JSON,
/// what is shown comes from the views.
pub fn diff(
    raw_before: &Value,
    raw_after: &Value,
    view_before: &Value,
    view_after: &Value,
) -> Vec<FieldChange> {
    let (before, after) = (leaves(raw_before), leaves(raw_after));
    let (shown_before, shown_after) = (leaves(view_before), leaves(view_after));
    let paths: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let null = Value::Null;
    paths
        .into_iter()
        .filter(|p| before.get(*p).unwrap_or(&null) != after.get(*p).unwrap_or(&null))
        .map(|p| {
            let from = shown_before.get(p).unwrap_or(&null).clone();
            let to = shown_after.get(p).unwrap_or(&null).clone();
            FieldChange { field: p.clone(), redacted: from == to, from, to }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn changed_leaves_are_reported_with_their_shown_values() {
        let before = json!({"name": "A", "details": {"phone": null}, "provider": {"token": "s1", "id": "x"}});
        let after =
            json!({"name": "B", "details": {"phone": "+1555"}, "provider": {"token": "s2", "id": "x"}});
        let mask = |v: &Value| {
            let mut v = v.clone();
            v["provider"]["token"] = json!("****");
            v
        };
        let changes = diff(&before, &after, &mask(&before), &mask(&after));
        assert_eq!(
            changes,
            vec![
                FieldChange {
                    field: "details.phone".into(),
                    from: json!(null),
                    to: json!("+1555"),
                    redacted: false
                },
                FieldChange { field: "name".into(), from: json!("A"), to: json!("B"), redacted: false },
                FieldChange {
                    field: "provider.token".into(),
                    from: json!("****"),
                    to: json!("****"),
                    redacted: true
                },
            ]
        );
    }

    #[test]
    fn arrays_are_leaves_and_missing_equals_null() {
        let changes = diff(
            &json!({"a": [1], "b": null}),
            &json!({"a": [1, 2]}),
            &json!({"a": [1]}),
            &json!({"a": [1, 2]}),
        );
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].field.as_str(), &changes[0].to), ("a", &json!([1, 2])));
        assert!(diff(&json!({}), &json!({"x": {}}), &json!({}), &json!({})).is_empty());
    }
}
