//! HTTP mapping of the typed errors of: The contact manager: lists, contacts, CSV import, whitelist.
