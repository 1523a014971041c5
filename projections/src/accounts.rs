//! The account list: every live account's public settings (never its secrets, not even
//! sealed) for listing. Owns `accounts`; a deleted account's row is removed.

use sqlx::AnyConnection;
use switchboard_domain::account::{AccountEvent, ProviderSettings};

use crate::runtime::{Projection, ms};
use crate::{DomainEventPayload, StoredEvent};

/// The account list projection.
pub struct Accounts;

/// The identifier a provider's webhooks are matched against (shown in lists): phone number
/// id (Meta), app id (Sinch), business number (Twilio, Kaleyra). Never a secret.
pub fn business_id(provider: &ProviderSettings) -> String {
    match provider {
        ProviderSettings::Meta(m) => m.phone_number_id.clone(),
        ProviderSettings::Twilio(t) => t.business_number.to_string(),
        ProviderSettings::Sinch(x) => x.app_id.clone(),
        ProviderSettings::Kaleyra(k) => k.business_number.to_string(),
    }
}

#[async_trait::async_trait]
impl Projection for Accounts {
    fn name(&self) -> &'static str {
        "accounts"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["accounts"]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        let DomainEventPayload::Account(e) = payload else { return Ok(()) };
        let id = event.aggregate_id.as_str();
        match e {
            AccountEvent::AccountCreated { name, key, provider, details, proxy_token, at } => {
                sqlx::query(
                    "INSERT INTO accounts (account_id, name, account_key, provider, business_id, phone,
                         description, default_list, public_domain, proxy_token, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
                     ON CONFLICT (account_id) DO NOTHING",
                )
                .bind(id)
                .bind(name.as_ref())
                .bind(key.as_ref())
                .bind(provider.kind())
                .bind(business_id(provider))
                .bind(details.phone.as_ref().map(ToString::to_string))
                .bind(details.description.as_ref().map(|d| d.as_ref().to_owned()))
                .bind(details.default_list.map(|l| l.to_string()))
                .bind(details.public_domain.as_ref().map(ToString::to_string))
                .bind(proxy_token.as_ref().map(ToString::to_string))
                .bind(ms(*at))
                .execute(&mut *conn)
                .await?;
            }
            AccountEvent::AccountRenamed { name, at } => {
                set(conn, id, "name", Some(name.to_string()), ms(*at)).await?;
            }
            AccountEvent::AccountKeyChanged { key, at } => {
                set(conn, id, "account_key", Some(key.to_string()), ms(*at)).await?;
            }
            AccountEvent::AccountDetailsChanged { details, at } => {
                sqlx::query(
                    "UPDATE accounts SET phone = $2, description = $3, default_list = $4, public_domain = $5,
                         updated_at = $6 WHERE account_id = $1",
                )
                .bind(id)
                .bind(details.phone.as_ref().map(ToString::to_string))
                .bind(details.description.as_ref().map(|d| d.as_ref().to_owned()))
                .bind(details.default_list.map(|l| l.to_string()))
                .bind(details.public_domain.as_ref().map(ToString::to_string))
                .bind(ms(*at))
                .execute(&mut *conn)
                .await?;
            }
            AccountEvent::ProviderCredentialsReplaced { provider, at } => {
                set(conn, id, "business_id", Some(business_id(provider)), ms(*at)).await?;
            }
            AccountEvent::AccountDeleted { .. } => {
                sqlx::query("DELETE FROM accounts WHERE account_id = $1")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Sets one column (named by this module, never by input) and the update time.
async fn set(
    conn: &mut AnyConnection,
    id: &str,
    column: &'static str,
    value: Option<String>,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("UPDATE accounts SET {column} = $2, updated_at = $3 WHERE account_id = $1"))
        .bind(id)
        .bind(value)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_domain::account::{
        AccountDetails, MetaSettings, ProviderSettings, ProxyToken, SealedSecret,
    };
    use switchboard_domain::{AccountKey, DisplayName, PhoneNumber};

    use super::*;
    use crate::testing::{Db, t};

    fn meta(token: &str) -> ProviderSettings {
        ProviderSettings::Meta(MetaSettings {
            business_account_id: "1".into(),
            app_id: "2".into(),
            phone_number_id: "100000000000002".into(),
            api_base_url: "http://x".into(),
            api_version: "v23.0".into(),
            access_token: SealedSecret(token.into()),
            app_secret: SealedSecret("sealed-app-secret".into()),
            verify_token: SealedSecret("sealed-verify".into()),
        })
    }

    #[tokio::test]
    async fn lists_public_settings_only_and_forgets_deleted_accounts() {
        let mut db = Db::new(vec![Arc::new(Accounts)]).await;
        let (a, b) = ("acc-a", "acc-b");
        for (id, key) in [(a, "AAA"), (b, "BBB")] {
            db.account(
                id,
                AccountEvent::AccountCreated {
                    name: DisplayName::parse("Support").expect("name"),
                    key: AccountKey::parse(key).expect("key"),
                    provider: meta("sealed-token"),
                    details: AccountDetails::default(),
                    proxy_token: Some(ProxyToken("p1".into())),
                    at: t(0),
                },
            )
            .await;
        }
        db.account(
            a,
            AccountEvent::AccountRenamed { name: DisplayName::parse("Sales").expect("name"), at: t(1) },
        )
        .await;
        db.account(
            a,
            AccountEvent::AccountDetailsChanged {
                details: AccountDetails {
                    phone: Some(PhoneNumber::parse("+15550001111").expect("phone")),
                    ..AccountDetails::default()
                },
                at: t(2),
            },
        )
        .await;
        db.account(a, AccountEvent::ProviderCredentialsReplaced { provider: meta("sealed-new"), at: t(3) })
            .await;
        db.account(b, AccountEvent::AccountDeleted { at: t(4) }).await;
        let rows = db
            .rows(
                "SELECT account_id || '|' || name || '|' || account_key || '|' || provider || '|' || business_id
                    || '|' || COALESCE(phone, '-') || '|' || proxy_token || '|' || CAST(updated_at AS TEXT)
                   FROM accounts ORDER BY account_id",
            )
            .await;
        assert_eq!(rows, vec![format!("acc-a|Sales|AAA|meta|100000000000002|+15550001111|p1|{}", ms(t(3)))]);
        let everything = db.dump(&["accounts"]).await.join("\n");
        assert!(!everything.contains("sealed"), "no secret, even sealed: {everything}");
        let live = db.dump(&["accounts"]).await;
        db.rebuild().await;
        assert_eq!(db.dump(&["accounts"]).await, live);
    }
}
