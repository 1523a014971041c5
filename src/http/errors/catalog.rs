//! HTTP mapping of the typed errors of: Catalogues: dispositions and canned answers.
