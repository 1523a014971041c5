//! Given/when/then tests for contact lists and cards, and their value objects.

use std::collections::BTreeMap;

use chrono::TimeZone;
use cqrs_es::test::TestFramework;

use super::*;
use crate::{Tag, ValueError};

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).single().expect("valid date")
}

fn name(s: &str) -> DisplayName {
    DisplayName::parse(s).expect("name")
}

fn phone() -> PhoneNumber {
    PhoneNumber::parse("+15551234567").expect("phone")
}

fn created_list() -> ContactListEvent {
    ContactListEvent::ContactListCreated { name: name("VIP"), description: None, at: at() }
}

fn details(n: &str) -> ContactDetails {
    ContactDetails { name: Some(name(n)), ..Default::default() }
}

fn fields(pairs: &[(&str, &str)]) -> CustomFields {
    CustomFields::parse(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
        .expect("fields")
}

#[test]
fn a_list_is_created_once_and_exists_until_deleted() {
    TestFramework::<ContactList>::with(())
        .given_no_previous_events()
        .when(ContactListCommand::Create { name: name("VIP"), description: None, at: at() })
        .then_expect_events(vec![created_list()]);
    TestFramework::<ContactList>::with(())
        .given(vec![created_list()])
        .when(ContactListCommand::Create { name: name("Other"), description: None, at: at() })
        .then_expect_error(ContactListError::AlreadyExists);
    let mut list = ContactList::default();
    assert!(!list.exists());
    list.fold(created_list());
    assert!(list.exists());
    list.fold(ContactListEvent::ContactListDeleted { at: at() });
    assert!(!list.exists());
}

#[test]
fn updating_a_list_records_the_new_values_and_an_unchanged_update_records_nothing() {
    let description = ListDescription::parse("Best customers").expect("ok");
    TestFramework::<ContactList>::with(())
        .given(vec![created_list()])
        .when(ContactListCommand::Update { name: None, description: Some(description.clone()), at: at() })
        .then_expect_events(vec![ContactListEvent::ContactListUpdated {
            name: name("VIP"),
            description,
            at: at(),
        }]);
    TestFramework::<ContactList>::with(())
        .given(vec![created_list()])
        .when(ContactListCommand::Update { name: Some(name("VIP")), description: None, at: at() })
        .then_expect_events(vec![]);
}

#[test]
fn a_missing_or_deleted_list_refuses_changes_and_a_deleted_id_is_never_reused() {
    TestFramework::<ContactList>::with(())
        .given_no_previous_events()
        .when(ContactListCommand::Delete { at: at() })
        .then_expect_error(ContactListError::NotFound);
    let deleted = vec![created_list(), ContactListEvent::ContactListDeleted { at: at() }];
    TestFramework::<ContactList>::with(())
        .given(deleted.clone())
        .when(ContactListCommand::Update { name: Some(name("X")), description: None, at: at() })
        .then_expect_error(ContactListError::NotFound);
    TestFramework::<ContactList>::with(())
        .given(deleted)
        .when(ContactListCommand::Create { name: name("X"), description: None, at: at() })
        .then_expect_error(ContactListError::AlreadyExists);
}

#[test]
fn card_ids_derive_from_list_and_phone() {
    let (a, b) = (ContactListId::new(), ContactListId::new());
    assert_eq!(card_id(a, &phone()), card_id(a, &phone()));
    assert_ne!(card_id(a, &phone()), card_id(b, &phone()));
    assert_ne!(card_id(a, &phone()), card_id(a, &PhoneNumber::parse("+15551234568").expect("phone")));
}

fn card_created(list_id: ContactListId, by: CreatedBy) -> ContactCardEvent {
    ContactCardEvent::ContactCardCreated {
        list_id,
        phone: phone(),
        details: details("Jane"),
        created_by: by,
        at: at(),
    }
}

#[test]
fn a_card_is_created_once_and_may_be_created_again_after_deletion() {
    let list = ContactListId::new();
    let create = |by| ContactCardCommand::Create {
        list_id: list,
        phone: phone(),
        details: details("Jane"),
        created_by: by,
        at: at(),
    };
    TestFramework::<ContactCard>::with(())
        .given_no_previous_events()
        .when(create(CreatedBy::Auto))
        .then_expect_events(vec![card_created(list, CreatedBy::Auto)]);
    TestFramework::<ContactCard>::with(())
        .given(vec![card_created(list, CreatedBy::Api)])
        .when(create(CreatedBy::Api))
        .then_expect_error(ContactCardError::AlreadyExists);
    TestFramework::<ContactCard>::with(())
        .given(vec![card_created(list, CreatedBy::Api), ContactCardEvent::ContactCardDeleted { at: at() }])
        .when(create(CreatedBy::Api))
        .then_expect_events(vec![card_created(list, CreatedBy::Api)]);
}

#[test]
fn a_patch_changes_only_what_it_names_and_clears_with_some_none() {
    let list = ContactListId::new();
    let email = Email::parse("jane@example.com").expect("email");
    let patch = ContactPatch {
        email: Some(Some(email.clone())),
        name: Some(None),
        tags: Some(ContactTags::parse_texts(["vip"]).expect("tags")),
        fields: None,
    };
    TestFramework::<ContactCard>::with(())
        .given(vec![card_created(list, CreatedBy::Api)])
        .when(ContactCardCommand::Update { patch, at: at() })
        .then_expect_events(vec![ContactCardEvent::ContactCardUpdated {
            details: ContactDetails {
                name: None,
                email: Some(email),
                tags: ContactTags::parse_texts(["vip"]).expect("tags"),
                fields: CustomFields::default(),
            },
            at: at(),
        }]);
    TestFramework::<ContactCard>::with(())
        .given(vec![card_created(list, CreatedBy::Api)])
        .when(ContactCardCommand::Update { patch: ContactPatch::default(), at: at() })
        .then_expect_events(vec![]);
}

#[test]
fn changing_or_deleting_a_missing_card_is_refused() {
    TestFramework::<ContactCard>::with(())
        .given_no_previous_events()
        .when(ContactCardCommand::Update { patch: ContactPatch::default(), at: at() })
        .then_expect_error(ContactCardError::NotFound);
    TestFramework::<ContactCard>::with(())
        .given(vec![
            card_created(ContactListId::new(), CreatedBy::Api),
            ContactCardEvent::ContactCardDeleted { at: at() },
        ])
        .when(ContactCardCommand::Delete { at: at() })
        .then_expect_error(ContactCardError::NotFound);
}

#[test]
fn an_import_row_creates_or_merges_without_removing_anything() {
    let list = ContactListId::new();
    let row = ContactDetails { fields: fields(&[("city", "Rome")]), ..details("Jane") };
    TestFramework::<ContactCard>::with(())
        .given_no_previous_events()
        .when(ContactCardCommand::Import { list_id: list, phone: phone(), row: row.clone(), at: at() })
        .then_expect_events(vec![ContactCardEvent::ContactCardCreated {
            list_id: list,
            phone: phone(),
            details: row,
            created_by: CreatedBy::Import,
            at: at(),
        }]);
    let existing = ContactCardEvent::ContactCardCreated {
        list_id: list,
        phone: phone(),
        details: ContactDetails {
            email: Some(Email::parse("jane@example.com").expect("email")),
            tags: ContactTags::parse_texts(["old"]).expect("tags"),
            fields: fields(&[("plan", "gold")]),
            ..details("Jane")
        },
        created_by: CreatedBy::Api,
        at: at(),
    };
    // Empty cells keep what the card has; fields are added; tags stay when the row has none.
    let row = ContactDetails {
        name: Some(name("Jane Doe")),
        fields: fields(&[("city", "Rome")]),
        ..Default::default()
    };
    TestFramework::<ContactCard>::with(())
        .given(vec![existing.clone()])
        .when(ContactCardCommand::Import { list_id: list, phone: phone(), row, at: at() })
        .then_expect_events(vec![ContactCardEvent::ContactCardUpdated {
            details: ContactDetails {
                name: Some(name("Jane Doe")),
                email: Some(Email::parse("jane@example.com").expect("email")),
                tags: ContactTags::parse_texts(["old"]).expect("tags"),
                fields: fields(&[("city", "Rome"), ("plan", "gold")]),
            },
            at: at(),
        }]);
    // The same row again changes nothing.
    TestFramework::<ContactCard>::with(())
        .given(vec![existing])
        .when(ContactCardCommand::Import { list_id: list, phone: phone(), row: details("Jane"), at: at() })
        .then_expect_events(vec![]);
}

#[test]
fn emails_must_look_like_addresses() {
    assert_eq!(Email::parse(" Jane@Example.COM ").map(String::from), Ok("Jane@example.com".to_owned()));
    for bad in
        ["", "jane", "jane@", "@example.com", "jane@example", "ja ne@example.com", "a@b@c.com", "a@.com"]
    {
        assert_eq!(Email::parse(bad), Err(ContactValueError::InvalidEmail(bad.to_owned())), "{bad}");
    }
    assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
}

#[test]
fn custom_fields_are_bounded_and_never_shadow_the_card_s_own_fields() {
    let map = |pairs: Vec<(String, String)>| pairs.into_iter().collect::<BTreeMap<_, _>>();
    assert!(CustomFields::parse(map(vec![("city".into(), "Rome".into())])).is_ok());
    for bad in ["", "Phone", "email", "with space", &"x".repeat(51)] {
        assert_eq!(
            CustomFields::parse(map(vec![(bad.to_owned(), "v".into())])),
            Err(ContactValueError::InvalidFieldName(bad.to_owned())),
            "{bad}"
        );
    }
    assert_eq!(
        CustomFields::parse(map(vec![("city".into(), "x".repeat(501))])),
        Err(ContactValueError::FieldValueTooLong("city".into()))
    );
    let many = (0..51).map(|i| (format!("f{i}"), "v".to_owned())).collect();
    assert_eq!(CustomFields::parse(many), Err(ContactValueError::TooManyFields));
    // An empty value is no value.
    assert!(CustomFields::parse(map(vec![("city".into(), " ".into())])).expect("ok").is_empty());
    assert_eq!(ContactValueError::FieldValueTooLong("city".into()).field(), "fields.city");
}

#[test]
fn tags_are_bounded_in_number_and_length() {
    let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    assert_eq!(
        ContactTags::parse_texts(many.iter().map(String::as_str)),
        Err(ContactValueError::TooManyTags)
    );
    assert_eq!(
        ContactTags::parse_texts([" "]),
        Err(ContactValueError::at("tags", ValueError::InvalidText { field: "tag", max: Tag::MAX_CHARS }))
    );
    assert_eq!(ListDescription::parse(&"d".repeat(501)), Err(ContactValueError::DescriptionTooLong));
    assert_eq!(ListDescription::parse("  "), Ok(None));
}

#[test]
fn stored_events_round_trip_through_json() {
    let event = ContactCardEvent::ContactCardCreated {
        list_id: ContactListId::new(),
        phone: phone(),
        details: ContactDetails {
            email: Some(Email::parse("jane@example.com").expect("email")),
            tags: ContactTags::parse_texts(["vip"]).expect("tags"),
            fields: fields(&[("city", "Rome")]),
            ..details("Jane")
        },
        created_by: CreatedBy::Auto,
        at: at(),
    };
    let json = serde_json::to_string(&event).expect("json");
    assert_eq!(serde_json::from_str::<ContactCardEvent>(&json).expect("back"), event);
    assert!(json.contains("\"created_by\":\"auto\""), "{json}");
}
