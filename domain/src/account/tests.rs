//! Given/when/then tests for every Account rule and rejection.

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;

type Given = TestFramework<Account>;

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).single().expect("valid date")
}

fn meta() -> ProviderSettings {
    ProviderSettings::Meta(MetaSettings {
        business_account_id: "100000000000001".into(),
        app_id: "42".into(),
        phone_number_id: "100000000000002".into(),
        api_base_url: "http://127.0.0.1:1".into(),
        api_version: "v23.0".into(),
        access_token: SealedSecret("sealed-token".into()),
        app_secret: SealedSecret("sealed-secret".into()),
        verify_token: SealedSecret("sealed-verify".into()),
    })
}

fn created() -> AccountEvent {
    AccountEvent::AccountCreated {
        name: DisplayName::parse("Support").expect("valid"),
        key: AccountKey::parse("SUP").expect("valid"),
        provider: meta(),
        details: AccountDetails::default(),
        proxy_token: Some(token()),
        at: at(),
    }
}

fn token() -> ProxyToken {
    ProxyToken("proxy-1".into())
}

#[test]
fn creating_a_new_account_records_it() {
    Given::with(())
        .given_no_previous_events()
        .when(AccountCommand::Create {
            name: DisplayName::parse("Support").expect("valid"),
            key: AccountKey::parse("sup").expect("valid"),
            provider: meta(),
            details: AccountDetails::default(),
            proxy_token: token(),
            at: at(),
        })
        .then_expect_events(vec![created()]);
}

#[test]
fn creating_an_existing_account_is_refused() {
    Given::with(())
        .given(vec![created()])
        .when(AccountCommand::Create {
            name: DisplayName::parse("Other").expect("valid"),
            key: AccountKey::parse("OTH").expect("valid"),
            provider: meta(),
            details: AccountDetails::default(),
            proxy_token: token(),
            at: at(),
        })
        .then_expect_error(AccountError::AlreadyExists);
}

#[test]
fn commands_on_a_missing_account_are_refused() {
    Given::with(())
        .given_no_previous_events()
        .when(AccountCommand::AddAgent { agent_id: AgentId::new(), at: at() })
        .then_expect_error(AccountError::NotFound);
}

#[test]
fn adding_an_agent_twice_records_it_once() {
    let agent_id = AgentId::new();
    Given::with(())
        .given(vec![created()])
        .when(AccountCommand::AddAgent { agent_id, at: at() })
        .then_expect_events(vec![AccountEvent::AgentAddedToAccount { agent_id, at: at() }]);
    Given::with(())
        .given(vec![created(), AccountEvent::AgentAddedToAccount { agent_id, at: at() }])
        .when(AccountCommand::AddAgent { agent_id, at: at() })
        .then_expect_events(vec![]);
}

#[test]
fn removing_a_member_records_it_and_removing_a_stranger_records_nothing() {
    let agent_id = AgentId::new();
    Given::with(())
        .given(vec![created(), AccountEvent::AgentAddedToAccount { agent_id, at: at() }])
        .when(AccountCommand::RemoveAgent { agent_id, at: at() })
        .then_expect_events(vec![AccountEvent::AgentRemovedFromAccount { agent_id, at: at() }]);
    Given::with(())
        .given(vec![created()])
        .when(AccountCommand::RemoveAgent { agent_id, at: at() })
        .then_expect_events(vec![]);
}

#[test]
fn setting_the_routing_queue_records_changes_only() {
    let queue_id = QueueId::new();
    Given::with(())
        .given(vec![created()])
        .when(AccountCommand::SetRoutingQueue { queue_id, at: at() })
        .then_expect_events(vec![AccountEvent::RoutingQueueSet { queue_id, at: at() }]);
    Given::with(())
        .given(vec![created(), AccountEvent::RoutingQueueSet { queue_id, at: at() }])
        .when(AccountCommand::SetRoutingQueue { queue_id, at: at() })
        .then_expect_events(vec![]);
}

#[test]
fn provider_settings_are_tagged_by_type_and_round_trip() {
    let twilio = ProviderSettings::Twilio(TwilioSettings {
        account_sid: "AC00000000000000000000000000000001".into(),
        business_number: crate::PhoneNumber::parse("+15557654321").expect("valid"),
        api_base_url: "https://api.twilio.com".into(),
        auth_token: SealedSecret("sealed".into()),
    });
    let json = serde_json::to_value(&twilio).expect("serialises");
    assert_eq!(json["type"], "twilio");
    assert_eq!(serde_json::from_value::<ProviderSettings>(json).ok(), Some(twilio.clone()));
    assert_eq!((twilio.kind(), meta().kind()), ("twilio", "meta"));
}

#[test]
fn setting_the_recontact_template_records_changes_only() {
    let template = crate::interaction::TemplateMessage::new("we_miss_you", "en", vec![]).expect("valid");
    let set = |template| AccountCommand::SetRecontactTemplate { template, at: at() };
    Given::with(()).given(vec![created()]).when(set(Some(template.clone()))).then_expect_events(vec![
        AccountEvent::RecontactTemplateSet { template: Some(template.clone()), at: at() },
    ]);
    let with_template =
        vec![created(), AccountEvent::RecontactTemplateSet { template: Some(template.clone()), at: at() }];
    Given::with(()).given(with_template.clone()).when(set(Some(template))).then_expect_events(vec![]);
    Given::with(())
        .given(with_template)
        .when(set(None))
        .then_expect_events(vec![AccountEvent::RecontactTemplateSet { template: None, at: at() }]);
    Given::with(()).given_no_previous_events().when(set(None)).then_expect_error(AccountError::NotFound);
}

fn twilio() -> ProviderSettings {
    ProviderSettings::Twilio(TwilioSettings {
        account_sid: "AC1".into(),
        business_number: crate::PhoneNumber::parse("+15557654321").expect("valid"),
        api_base_url: "https://api.twilio.com".into(),
        auth_token: SealedSecret("sealed".into()),
    })
}

#[test]
fn renaming_and_rekeying_record_changes_only() {
    let name = DisplayName::parse("Sales").expect("valid");
    Given::with(())
        .given(vec![created()])
        .when(AccountCommand::Rename { name: name.clone(), at: at() })
        .then_expect_events(vec![AccountEvent::AccountRenamed { name, at: at() }]);
    Given::with(())
        .given(vec![created()])
        .when(AccountCommand::Rename { name: DisplayName::parse("Support").expect("valid"), at: at() })
        .then_expect_events(vec![]);
    let key = AccountKey::parse("SAL").expect("valid");
    Given::with(())
        .given(vec![created()])
        .when(AccountCommand::ChangeKey { key: key.clone(), at: at() })
        .then_expect_events(vec![AccountEvent::AccountKeyChanged { key, at: at() }]);
}

#[test]
fn details_change_by_patch_and_record_the_whole_result() {
    let phone = crate::PhoneNumber::parse("+15550001111").expect("valid");
    let patch = DetailsPatch { phone: Some(Some(phone.clone())), ..DetailsPatch::default() };
    let details = AccountDetails { phone: Some(phone), ..AccountDetails::default() };
    Given::with(())
        .given(vec![created()])
        .when(AccountCommand::ChangeDetails { patch: patch.clone(), at: at() })
        .then_expect_events(vec![AccountEvent::AccountDetailsChanged { details: details.clone(), at: at() }]);
    Given::with(())
        .given(vec![created(), AccountEvent::AccountDetailsChanged { details, at: at() }])
        .when(AccountCommand::ChangeDetails { patch, at: at() })
        .then_expect_events(vec![]);
}

#[test]
fn credentials_are_replaced_within_their_provider_type_only() {
    Given::with(())
        .given(vec![created()])
        .when(AccountCommand::ReplaceProvider { provider: twilio(), at: at() })
        .then_expect_error(AccountError::ProviderTypeChange { from: "meta", to: "twilio" });
    let mut other = meta();
    if let ProviderSettings::Meta(m) = &mut other {
        m.access_token = SealedSecret("sealed-new".into());
    }
    Given::with(())
        .given(vec![created()])
        .when(AccountCommand::ReplaceProvider { provider: other.clone(), at: at() })
        .then_expect_events(vec![AccountEvent::ProviderCredentialsReplaced {
            provider: other.clone(),
            at: at(),
        }]);
    Given::with(())
        .given(vec![created()])
        .when(AccountCommand::ResealProvider { provider: other.clone(), at: at() })
        .then_expect_events(vec![AccountEvent::ProviderCredentialsResealed { provider: other, at: at() }]);
    Given::with(())
        .given(vec![created()])
        .when(AccountCommand::ResealProvider { provider: twilio(), at: at() })
        .then_expect_error(AccountError::ProviderTypeChange { from: "meta", to: "twilio" });
}

#[test]
fn a_deleted_account_refuses_everything_and_forgets_its_provider() {
    let deleted = vec![created(), AccountEvent::AccountDeleted { at: at() }];
    Given::with(())
        .given(vec![created()])
        .when(AccountCommand::Delete { at: at() })
        .then_expect_events(vec![AccountEvent::AccountDeleted { at: at() }]);
    Given::with(())
        .given(deleted.clone())
        .when(AccountCommand::Delete { at: at() })
        .then_expect_error(AccountError::NotFound);
    Given::with(())
        .given(deleted.clone())
        .when(AccountCommand::AddAgent { agent_id: AgentId::new(), at: at() })
        .then_expect_error(AccountError::NotFound);
    let mut state = Account::default();
    for e in deleted {
        cqrs_es::Aggregate::apply(&mut state, e);
    }
    assert!(state.deleted && !state.exists() && state.provider.is_none());
}

#[test]
fn masking_hides_every_secret_and_keeps_identifiers() {
    let masked = serde_json::to_string(&meta().masked()).expect("json");
    for secret in ["sealed-token", "sealed-secret", "sealed-verify"] {
        assert!(!masked.contains(secret), "{masked}");
    }
    assert!(masked.contains("100000000000002") && masked.contains(MASKED_SECRET));
    let kaleyra = ProviderSettings::Kaleyra(KaleyraSettings {
        api_base_url: "https://api.kaleyra.io".into(),
        waba_id: "w".into(),
        account_sid: "s".into(),
        api_key: SealedSecret("k1".into()),
        business_number: crate::PhoneNumber::parse("+15557654321").expect("valid"),
        callback_auth: KaleyraCallbackAuth::Basic { user: "u".into(), password: SealedSecret("p1".into()) },
    });
    assert_eq!(kaleyra.secrets(), vec![SealedSecret("k1".into()), SealedSecret("p1".into())]);
    assert_eq!(meta().secrets().len(), 3);
}

#[test]
fn accounts_recorded_before_details_existed_still_decode() {
    let old = serde_json::json!({"AccountCreated": {"name": "Support", "key": "SUP",
        "provider": serde_json::to_value(meta()).expect("json"), "at": "2026-01-05T10:00:00Z"}});
    let event: AccountEvent = serde_json::from_value(old).expect("decodes");
    let AccountEvent::AccountCreated { details, proxy_token, .. } = event else { panic!("created") };
    assert_eq!((details, proxy_token), (AccountDetails::default(), None));
}
