//! Integration tests: see the area's module in src/http/catalog.rs.
