//! Which fields of which events are personal data, and whose data they are.
//!
//! The list is explicit (ADR 0020): a field is sealed only if it is named here, so adding a
//! personal field to an event means adding it here too. Paths are relative to the event's
//! body (the object under its variant name); every string below a path is sealed on its own
//! (arrays and maps included), so the JSON keeps its shape and a placeholder can stand in for
//! any sealed string once its key is destroyed. Structural values (media kinds, digests, MIME
//! types, template names, ids) stay plaintext: they are needed to replay and say nothing about
//! the person.

use serde_json::Value;

/// A path of object keys inside an event body.
pub type Path = &'static [&'static str];

/// The personal fields of an event, by aggregate type and event type.
pub fn personal(aggregate_type: &str, event_type: &str) -> &'static [Path] {
    match (aggregate_type, event_type) {
        ("Interaction", "InteractionOpened") => &[&["customer"], &["customer_name"]],
        ("Interaction", "CustomerMessageReceived") => &[
            &["content", "body"],
            &["content", "source"],
            &["content", "caption"],
            &["content", "filename"],
            &["content", "summary"],
        ],
        ("Interaction", "AgentMessageSent") => &[&["to"], &["text"]],
        ("Interaction", "AgentMediaSent") => &[&["to"], &["media", "caption"], &["media", "filename"]],
        ("Interaction", "AgentTemplateSent") => &[&["to"], &["template", "parameters"]],
        ("Interaction", "AutoReplySent") => &[&["to"]],
        ("Interaction", "NoteAdded") => &[&["text"]],
        ("ContactCard", "ContactCardCreated") => {
            &[&["phone"], &["details", "name"], &["details", "email"], &["details", "fields"]]
        }
        ("ContactCard", "ContactCardUpdated") => {
            &[&["details", "name"], &["details", "email"], &["details", "fields"]]
        }
        _ => &[],
    }
}

/// Whose data an aggregate holds, read from the event that starts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A customer of an account (an interaction's `InteractionOpened`).
    Contact {
        /// The account.
        account_id: String,
        /// The customer's number.
        phone: String,
    },
    /// A directory card (its `ContactCardCreated`).
    Card {
        /// The card's aggregate id.
        card_id: String,
    },
}

/// The owner an aggregate's first event names, if this event starts one.
pub fn owner(aggregate_type: &str, aggregate_id: &str, event_type: &str, body: &Value) -> Option<Owner> {
    match (aggregate_type, event_type) {
        ("Interaction", "InteractionOpened") => Some(Owner::Contact {
            account_id: body.get("account_id")?.as_str()?.to_owned(),
            phone: body.get("customer")?.as_str()?.to_owned(),
        }),
        ("ContactCard", "ContactCardCreated") => Some(Owner::Card { card_id: aggregate_id.to_owned() }),
        _ => None,
    }
}

/// The body of a stored event: the object under its variant name (cqrs-es stores an event
/// enum externally tagged, `{"InteractionOpened": {...}}`).
pub fn body_mut<'a>(payload: &'a mut Value, event_type: &str) -> Option<&'a mut Value> {
    payload.as_object_mut()?.get_mut(event_type)
}

/// Applies `f` to every string at or below `path` in `body` (nulls and absent fields are left
/// alone). `f` gets the key the string sits under (for an array element or a map value, the
/// key of the array or map's field).
pub fn for_each_string(body: &mut Value, path: Path, f: &mut dyn FnMut(&str, &mut String)) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = body;
    for key in parents {
        match at.get_mut(*key) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(value) = at.get_mut(*last) {
        walk(value, last, f);
    }
}

fn walk(value: &mut Value, key: &str, f: &mut dyn FnMut(&str, &mut String)) {
    match value {
        Value::String(s) => f(key, s),
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, key, f)),
        Value::Object(map) => map.iter_mut().for_each(|(_, v)| walk(v, key, f)),
        _ => {}
    }
}

/// Applies `f` to every string anywhere in `value`, with the key it sits under.
pub fn for_every_string(value: &mut Value, f: &mut dyn FnMut(&str, &mut String)) {
    fn go(value: &mut Value, key: &str, f: &mut dyn FnMut(&str, &mut String)) {
        match value {
            Value::String(s) => f(key, s),
            Value::Array(items) => items.iter_mut().for_each(|v| go(v, key, f)),
            Value::Object(map) => map.iter_mut().for_each(|(k, v)| go(v, k, f)),
            _ => {}
        }
    }
    go(value, "", f)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strings_below_a_path_are_visited_with_their_key_and_nothing_else() {
        let mut body = json!({
            "to": "+15550001111",
            "template": {"name": "hello", "language": "en", "parameters": ["Jane", "42"]},
            "account_id": "a"
        });
        let mut seen = Vec::new();
        for path in personal("Interaction", "AgentTemplateSent") {
            for_each_string(&mut body, path, &mut |key, s| {
                seen.push((key.to_owned(), s.clone()));
                *s = "x".into();
            });
        }
        assert_eq!(
            seen,
            [
                ("to".into(), "+15550001111".into()),
                ("parameters".into(), "Jane".into()),
                ("parameters".into(), "42".into())
            ]
        );
        assert_eq!(body["template"]["name"], "hello");
        assert_eq!(body["account_id"], "a");
    }

    #[test]
    fn the_owner_comes_from_the_first_event() {
        let body = json!({"account_id": "acc", "customer": "+15550001111"});
        assert_eq!(
            owner("Interaction", "i", "InteractionOpened", &body),
            Some(Owner::Contact { account_id: "acc".into(), phone: "+15550001111".into() })
        );
        assert_eq!(owner("Interaction", "i", "AgentAssigned", &body), None);
        assert_eq!(
            owner("ContactCard", "c", "ContactCardCreated", &body),
            Some(Owner::Card { card_id: "c".into() })
        );
    }
}
