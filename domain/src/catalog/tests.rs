//! Given/when/then tests for every catalogue rule and refusal.

use chrono::{TimeZone, Utc};
use cqrs_es::Aggregate;
use cqrs_es::test::TestFramework;
use serde_json::json;

use super::dispositions::{DispositionChoice, DispositionChoiceError};
use super::*;
use crate::{CannedAnswerId, DisplayName, DispositionCode, DispositionId};

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).single().expect("valid date")
}

fn name(s: &str) -> DisplayName {
    DisplayName::parse(s).expect("valid name")
}

fn id(n: u128) -> DispositionId {
    DispositionId::from_uuid(uuid::Uuid::from_u128(n))
}

fn added(n: u128, parent: Option<u128>, label: &str) -> DispositionCatalogEvent {
    DispositionCatalogEvent::DispositionAdded {
        id: id(n),
        parent: parent.map(id),
        name: name(label),
        at: at(),
    }
}

fn add(n: u128, parent: Option<u128>, label: &str) -> DispositionCatalogCommand {
    DispositionCatalogCommand::Add { id: id(n), parent: parent.map(id), name: name(label), at: at() }
}

type Dispositions = TestFramework<DispositionCatalog>;

/// Sales > Upgrade > Annual, plus Support at the top.
fn tree() -> Vec<DispositionCatalogEvent> {
    vec![
        added(1, None, "Sales"),
        added(2, Some(1), "Upgrade"),
        added(3, Some(2), "Annual"),
        added(4, None, "Support"),
    ]
}

fn catalog(events: Vec<DispositionCatalogEvent>) -> DispositionCatalog {
    let mut c = DispositionCatalog::default();
    for e in events {
        c.apply(e);
    }
    c
}

#[test]
fn adding_a_category_a_subcategory_and_a_detail_records_each() {
    Dispositions::with(())
        .given_no_previous_events()
        .when(add(1, None, "Sales"))
        .then_expect_events(vec![added(1, None, "Sales")]);
    Dispositions::with(())
        .given(vec![added(1, None, "Sales")])
        .when(add(2, Some(1), "Upgrade"))
        .then_expect_events(vec![added(2, Some(1), "Upgrade")]);
    Dispositions::with(())
        .given(vec![added(1, None, "Sales"), added(2, Some(1), "Upgrade")])
        .when(add(3, Some(2), "Annual"))
        .then_expect_events(vec![added(3, Some(2), "Annual")]);
}

#[test]
fn a_fourth_level_is_refused() {
    Dispositions::with(())
        .given(tree())
        .when(add(9, Some(3), "Deeper"))
        .then_expect_error(DispositionCatalogError::TooDeep);
}

#[test]
fn a_parent_that_is_not_in_the_catalogue_is_refused() {
    Dispositions::with(())
        .given(tree())
        .when(add(9, Some(77), "Orphan"))
        .then_expect_error(DispositionCatalogError::ParentNotFound);
}

#[test]
fn sibling_names_are_unique_ignoring_case_but_cousins_may_share_one() {
    Dispositions::with(())
        .given(tree())
        .when(add(9, None, "sales"))
        .then_expect_error(DispositionCatalogError::NameTaken);
    Dispositions::with(())
        .given(tree())
        .when(add(9, Some(1), "UPGRADE"))
        .then_expect_error(DispositionCatalogError::NameTaken);
    Dispositions::with(()).given(tree()).when(add(9, Some(4), "Upgrade")).then_expect_events(vec![added(
        9,
        Some(4),
        "Upgrade",
    )]);
}

#[test]
fn the_system_name_is_reserved_at_the_top_of_every_catalogue() {
    Dispositions::with(())
        .given_no_previous_events()
        .when(add(9, None, "closed FOR inactivity"))
        .then_expect_error(DispositionCatalogError::NameTaken);
    // Under a category it is just a name.
    Dispositions::with(())
        .given(tree())
        .when(add(9, Some(4), "Closed for inactivity"))
        .then_expect_events(vec![added(9, Some(4), "Closed for inactivity")]);
}

#[test]
fn a_name_with_the_label_separator_is_refused() {
    Dispositions::with(())
        .given(tree())
        .when(add(9, None, "Sales > Lost"))
        .then_expect_error(DispositionCatalogError::NameHasSeparator);
    Dispositions::with(())
        .given(tree())
        .when(DispositionCatalogCommand::Rename { id: id(4), name: name("A>B"), at: at() })
        .then_expect_error(DispositionCatalogError::NameHasSeparator);
}

#[test]
fn a_label_longer_than_a_recorded_disposition_is_refused() {
    let long = "x".repeat(DispositionCode::MAX_CHARS - "Sales > Upgrade > ".len() + 1);
    Dispositions::with(())
        .given(tree())
        .when(add(9, Some(2), &long))
        .then_expect_error(DispositionCatalogError::LabelTooLong);
    let fits = "x".repeat(DispositionCode::MAX_CHARS - "Sales > Upgrade > ".len());
    Dispositions::with(()).given(tree()).when(add(9, Some(2), &fits)).then_expect_events(vec![added(
        9,
        Some(2),
        &fits,
    )]);
    // A single name longer than a label can be.
    Dispositions::with(())
        .given(tree())
        .when(add(9, None, &"y".repeat(65)))
        .then_expect_error(DispositionCatalogError::LabelTooLong);
}

#[test]
fn renaming_a_category_is_refused_when_a_descendant_label_would_no_longer_fit() {
    let detail = "x".repeat(DispositionCode::MAX_CHARS - "Sales > Upgrade > ".len());
    let given = vec![added(1, None, "Sales"), added(2, Some(1), "Upgrade"), added(3, Some(2), &detail)];
    Dispositions::with(())
        .given(given.clone())
        .when(DispositionCatalogCommand::Rename { id: id(1), name: name("Sales!"), at: at() })
        .then_expect_error(DispositionCatalogError::LabelTooLong);
    Dispositions::with(())
        .given(given)
        .when(DispositionCatalogCommand::Rename { id: id(1), name: name("Sold"), at: at() })
        .then_expect_events(vec![DispositionCatalogEvent::DispositionRenamed {
            id: id(1),
            name: name("Sold"),
            at: at(),
        }]);
}

#[test]
fn renaming_follows_the_sibling_rule_and_a_same_name_is_a_no_op() {
    let rename = |n, s: &str| DispositionCatalogCommand::Rename { id: id(n), name: name(s), at: at() };
    Dispositions::with(())
        .given(tree())
        .when(rename(4, "SALES"))
        .then_expect_error(DispositionCatalogError::NameTaken);
    // Changing only the case of one's own name is fine.
    Dispositions::with(()).given(tree()).when(rename(4, "SUPPORT")).then_expect_events(vec![
        DispositionCatalogEvent::DispositionRenamed { id: id(4), name: name("SUPPORT"), at: at() },
    ]);
    Dispositions::with(()).given(tree()).when(rename(4, "Support")).then_expect_events(vec![]);
    Dispositions::with(())
        .given(tree())
        .when(rename(77, "Ghost"))
        .then_expect_error(DispositionCatalogError::NotFound);
}

#[test]
fn removing_a_leaf_records_it_and_a_parent_with_children_is_refused() {
    Dispositions::with(())
        .given(tree())
        .when(DispositionCatalogCommand::Remove { id: id(3), at: at() })
        .then_expect_events(vec![DispositionCatalogEvent::DispositionRemoved { id: id(3), at: at() }]);
    Dispositions::with(())
        .given(tree())
        .when(DispositionCatalogCommand::Remove { id: id(2), at: at() })
        .then_expect_error(DispositionCatalogError::HasChildren);
    Dispositions::with(())
        .given(tree())
        .when(DispositionCatalogCommand::Remove { id: id(77), at: at() })
        .then_expect_error(DispositionCatalogError::NotFound);
}

#[test]
fn the_system_disposition_can_be_neither_renamed_nor_removed_nor_refined() {
    let system = closed_for_inactivity_id();
    Dispositions::with(())
        .given_no_previous_events()
        .when(DispositionCatalogCommand::Rename { id: system, name: name("Idle"), at: at() })
        .then_expect_error(DispositionCatalogError::SystemDisposition);
    Dispositions::with(())
        .given_no_previous_events()
        .when(DispositionCatalogCommand::Remove { id: system, at: at() })
        .then_expect_error(DispositionCatalogError::SystemDisposition);
    Dispositions::with(())
        .given_no_previous_events()
        .when(DispositionCatalogCommand::Add { id: id(9), parent: Some(system), name: name("Sub"), at: at() })
        .then_expect_error(DispositionCatalogError::SystemDisposition);
    Dispositions::with(())
        .given_no_previous_events()
        .when(DispositionCatalogCommand::Add { id: system, parent: None, name: name("Other"), at: at() })
        .then_expect_error(DispositionCatalogError::SystemDisposition);
}

#[test]
fn the_general_catalogue_holds_the_system_disposition_before_any_event() {
    let nodes = DispositionCatalog::default().tree(Scope::General);
    assert_eq!(nodes.len(), 1);
    assert_eq!(
        (nodes[0].id, nodes[0].label.as_str(), nodes[0].system),
        (closed_for_inactivity_id(), crate::interaction::CLOSED_FOR_INACTIVITY, true)
    );
    // An account's catalogue does not repeat it.
    assert!(DispositionCatalog::default().tree(Scope::Account(crate::AccountId::new())).is_empty());
}

#[test]
fn a_retried_add_records_nothing_and_a_reused_id_is_refused() {
    Dispositions::with(()).given(tree()).when(add(4, None, "Support")).then_expect_events(vec![]);
    Dispositions::with(())
        .given(tree())
        .when(add(4, None, "Billing"))
        .then_expect_error(DispositionCatalogError::DuplicateId);
}

#[test]
fn a_full_catalogue_takes_no_more() {
    let full: Vec<_> = (0..MAX_ENTRIES as u128).map(|n| added(1000 + n, None, &format!("D{n}"))).collect();
    Dispositions::with(())
        .given(full)
        .when(add(9, None, "One more"))
        .then_expect_error(DispositionCatalogError::CatalogFull);
}

#[test]
fn the_tree_shows_labels_and_origins_and_removal_and_renaming_fold() {
    let c = catalog(tree());
    let nodes = c.tree(Scope::Account(crate::AccountId::new()));
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].children[0].children[0].label, "Sales > Upgrade > Annual");
    assert!(nodes.iter().all(|n| n.origin == Origin::Account));
    let mut c = c;
    c.apply(DispositionCatalogEvent::DispositionRenamed { id: id(1), name: name("Sold"), at: at() });
    assert_eq!(c.label(id(3)).as_deref(), Some("Sold > Upgrade > Annual"));
    c.apply(DispositionCatalogEvent::DispositionRemoved { id: id(3), at: at() });
    assert_eq!(c.label(id(3)), None);
    assert_eq!(c.depth(id(2)), 2);
}

#[test]
fn an_agent_choice_records_the_full_label_of_a_leaf() {
    let general = catalog(vec![added(1, None, "Solved")]);
    let account = catalog(tree());
    let chosen = choose(&general, &account, DispositionChoice::Catalogue(id(3)));
    assert_eq!(chosen.map(String::from), Ok("Sales > Upgrade > Annual".to_owned()));
    // The same id space: the general catalogue's own.
    let chosen =
        choose(&catalog(vec![added(10, None, "Solved")]), &account, DispositionChoice::Catalogue(id(10)));
    assert_eq!(chosen.map(String::from), Ok("Solved".to_owned()));
}

#[test]
fn an_agent_choice_refuses_unknown_system_and_non_leaf_dispositions() {
    let general = DispositionCatalog::default();
    let account = catalog(tree());
    assert_eq!(
        choose(&general, &account, DispositionChoice::Catalogue(id(77))),
        Err(DispositionChoiceError::Unknown)
    );
    assert_eq!(
        choose(&general, &account, DispositionChoice::Catalogue(closed_for_inactivity_id())),
        Err(DispositionChoiceError::System)
    );
    assert_eq!(
        choose(&general, &account, DispositionChoice::Catalogue(id(2))),
        Err(DispositionChoiceError::NotLeaf)
    );
}

#[test]
fn free_text_is_accepted_only_while_no_catalogue_has_a_disposition() {
    let free = || DispositionChoice::Free(DispositionCode::parse("Solved").expect("valid"));
    let empty = DispositionCatalog::default();
    assert_eq!(choose(&empty, &empty, free()).map(String::from), Ok("Solved".to_owned()));
    assert_eq!(choose(&catalog(tree()), &empty, free()), Err(DispositionChoiceError::CatalogueRequired));
    assert_eq!(choose(&empty, &catalog(tree()), free()), Err(DispositionChoiceError::CatalogueRequired));
}

#[test]
fn agents_pick_from_general_then_account_without_the_system_disposition() {
    let general = catalog(vec![added(10, None, "Solved")]);
    let account = catalog(vec![added(1, None, "Sales")]);
    let nodes = blend_dispositions(&general, &account);
    let seen: Vec<_> = nodes.iter().map(|n| (n.name.as_str(), n.origin)).collect();
    assert_eq!(seen, vec![("Solved", Origin::General), ("Sales", Origin::Account)]);
}

#[test]
fn refusals_name_their_field() {
    assert_eq!(DispositionCatalogError::TooDeep.field(), Some("parent_id"));
    assert_eq!(DispositionCatalogError::NameTaken.field(), Some("name"));
    assert!(DispositionCatalogError::LabelTooLong.to_string().contains("`name`"));
    assert_eq!(DispositionCatalogError::HasChildren.field(), None);
    assert_eq!(CannedCatalogError::TitleTaken.field(), Some("title"));
    assert!(DispositionChoiceError::NotLeaf.to_string().contains("`disposition_id`"));
}

#[test]
fn scopes_name_their_aggregate() {
    let account_id = crate::AccountId::new();
    assert_eq!(Scope::General.aggregate_id(), "general");
    assert_eq!(Scope::Account(account_id).aggregate_id(), account_id.to_string());
}

// ---- canned answers ----

type Canned = TestFramework<CannedCatalog>;

fn cid(n: u128) -> CannedAnswerId {
    CannedAnswerId::from_uuid(uuid::Uuid::from_u128(n))
}

fn text(s: &str) -> CannedText {
    CannedText::parse(s).expect("valid canned text")
}

fn answer_added(n: u128, title: &str, body: &str) -> CannedCatalogEvent {
    CannedCatalogEvent::CannedAnswerAdded { id: cid(n), title: name(title), text: text(body), at: at() }
}

fn add_answer(n: u128, title: &str, body: &str) -> CannedCatalogCommand {
    CannedCatalogCommand::Add { id: cid(n), title: name(title), text: text(body), at: at() }
}

fn answers(events: Vec<CannedCatalogEvent>) -> CannedCatalog {
    let mut c = CannedCatalog::default();
    for e in events {
        c.apply(e);
    }
    c
}

#[test]
fn adding_a_canned_answer_records_it() {
    Canned::with(())
        .given_no_previous_events()
        .when(add_answer(1, "Greeting", "Hello {{contact.name}}, I am {{agent.name}}."))
        .then_expect_events(vec![answer_added(
            1,
            "Greeting",
            "Hello {{contact.name}}, I am {{agent.name}}.",
        )]);
}

#[test]
fn titles_are_unique_in_a_catalogue_ignoring_case() {
    Canned::with(())
        .given(vec![answer_added(1, "Greeting", "Hi")])
        .when(add_answer(2, "GREETING", "Hello"))
        .then_expect_error(CannedCatalogError::TitleTaken);
    Canned::with(())
        .given(vec![answer_added(1, "Greeting", "Hi"), answer_added(2, "Bye", "Bye")])
        .when(CannedCatalogCommand::Edit { id: cid(2), title: Some(name("greeting")), text: None, at: at() })
        .then_expect_error(CannedCatalogError::TitleTaken);
}

#[test]
fn editing_records_the_whole_answer_as_it_now_is_and_no_change_records_nothing() {
    Canned::with(())
        .given(vec![answer_added(1, "Greeting", "Hi")])
        .when(CannedCatalogCommand::Edit { id: cid(1), title: None, text: Some(text("Hello")), at: at() })
        .then_expect_events(vec![CannedCatalogEvent::CannedAnswerEdited {
            id: cid(1),
            title: name("Greeting"),
            text: text("Hello"),
            at: at(),
        }]);
    Canned::with(())
        .given(vec![answer_added(1, "Greeting", "Hi")])
        .when(CannedCatalogCommand::Edit { id: cid(1), title: Some(name("Greeting")), text: None, at: at() })
        .then_expect_events(vec![]);
    Canned::with(())
        .given_no_previous_events()
        .when(CannedCatalogCommand::Edit { id: cid(1), title: None, text: Some(text("Hello")), at: at() })
        .then_expect_error(CannedCatalogError::NotFound);
}

#[test]
fn removing_an_answer_records_it_and_an_unknown_one_is_refused() {
    Canned::with(())
        .given(vec![answer_added(1, "Greeting", "Hi")])
        .when(CannedCatalogCommand::Remove { id: cid(1), at: at() })
        .then_expect_events(vec![CannedCatalogEvent::CannedAnswerRemoved { id: cid(1), at: at() }]);
    Canned::with(())
        .given_no_previous_events()
        .when(CannedCatalogCommand::Remove { id: cid(1), at: at() })
        .then_expect_error(CannedCatalogError::NotFound);
}

#[test]
fn a_retried_add_records_nothing_a_reused_id_and_a_full_catalogue_are_refused() {
    Canned::with(())
        .given(vec![answer_added(1, "Greeting", "Hi")])
        .when(add_answer(1, "Greeting", "Hi"))
        .then_expect_events(vec![]);
    Canned::with(())
        .given(vec![answer_added(1, "Greeting", "Hi")])
        .when(add_answer(1, "Other", "Hi"))
        .then_expect_error(CannedCatalogError::DuplicateId);
    let full: Vec<_> =
        (0..MAX_ENTRIES as u128).map(|n| answer_added(1000 + n, &format!("A{n}"), "x")).collect();
    Canned::with(())
        .given(full)
        .when(add_answer(1, "One more", "x"))
        .then_expect_error(CannedCatalogError::CatalogFull);
}

#[test]
fn canned_texts_are_bounded_and_their_placeholders_must_parse() {
    assert_eq!(CannedText::parse(""), Err(CannedTextError::Length { max: 4096 }));
    assert_eq!(CannedText::parse(&"x".repeat(4097)), Err(CannedTextError::Length { max: 4096 }));
    assert!(CannedText::parse(&"x".repeat(4096)).is_ok());
    match CannedText::parse("Hello {{contact.name") {
        Err(CannedTextError::Placeholders(e)) => assert_eq!((e.line, e.position), (1, 6)),
        other => panic!("expected a placeholder error, got {other:?}"),
    }
    // Events read back go through the same parse.
    assert!(serde_json::from_value::<CannedText>(json!("Hi {{#x}}")).is_err());
    assert_eq!(serde_json::to_value(text("Hi {{agent.name}}")).ok(), Some(json!("Hi {{agent.name}}")));
}

#[test]
fn agents_get_one_list_sorted_by_title_origin_marked_and_placeholders_filled() {
    let general = answers(vec![
        answer_added(1, "Thanks", "Thank you, {{contact.name}}!"),
        answer_added(2, "Greeting", "Hello"),
    ]);
    let account = answers(vec![answer_added(3, "greeting", "Hi {{contact.name}}, {{agent.name}} here.")]);
    let context = json!({"contact": {"name": "Jane"}, "agent": {"name": "Sam"}});
    let list = blend_answers(&general, &account, None, &context);
    let seen: Vec<_> = list.iter().map(|a| (a.title.as_str(), a.origin, a.text.as_str())).collect();
    assert_eq!(
        seen,
        vec![
            ("greeting", Origin::Account, "Hi Jane, Sam here."),
            ("Greeting", Origin::General, "Hello"),
            ("Thanks", Origin::General, "Thank you, Jane!"),
        ]
    );
    assert_eq!(list[0].source, "Hi {{contact.name}}, {{agent.name}} here.");
    // A missing value renders empty.
    let list = blend_answers(&general, &CannedCatalog::default(), Some("thank"), &json!({}));
    assert_eq!(list.iter().map(|a| a.text.as_str()).collect::<Vec<_>>(), vec!["Thank you, !"]);
}

#[test]
fn the_search_matches_titles_and_texts_ignoring_case() {
    let general = answers(vec![
        answer_added(1, "Thanks", "Thank you, {{contact.name}}!"),
        answer_added(2, "Opening hours", "We are open 9 to 5."),
    ]);
    let context = json!({"contact": {"name": "Jane"}});
    let titles = |q: &str| -> Vec<String> {
        blend_answers(&general, &CannedCatalog::default(), Some(q), &context)
            .into_iter()
            .map(|a| a.title)
            .collect()
    };
    assert_eq!(titles("HOURS"), vec!["Opening hours"]);
    assert_eq!(titles("9 to 5"), vec!["Opening hours"]);
    assert_eq!(titles("jane"), vec!["Thanks"]);
    assert_eq!(titles("contact.name"), vec!["Thanks"]);
    assert_eq!(titles("   ").len(), 2);
    assert!(titles("nothing like it").is_empty());
}
