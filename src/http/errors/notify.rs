//! HTTP mapping of the typed errors of: Offer notification settings and templates.
