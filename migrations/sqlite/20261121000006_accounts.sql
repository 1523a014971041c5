-- Account list (projection "accounts"): every live account's public settings for listing.
-- No provider secret is ever written here, not even sealed: only the provider type and the
-- business identifier webhooks are matched against. Deleted accounts' rows are removed.
CREATE TABLE accounts
(
    account_id    text PRIMARY KEY,
    name          text   NOT NULL,
    account_key   text   NOT NULL,
    provider      text   NOT NULL,
    business_id   text,
    phone         text,
    description   text,
    default_list  text,
    public_domain text,
    proxy_token   text,
    created_at    bigint NOT NULL,
    updated_at    bigint NOT NULL
);
CREATE INDEX accounts_by_name ON accounts (name, account_id);
