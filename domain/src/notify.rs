//! Notification templates: the Mustache subset the seed's account notification uses
//! (`{{account.name}}`, `{{#queue}}…{{/queue}}`, `{{contact.mobile}}`), also used to fill
//! canned answers' placeholders.
//!
//! A template is parsed when it is saved (parse, don't validate): an account can only hold
//! one that renders. Rendering never escapes HTML: the text goes to agents' notifications
//! as text, and customers' words must arrive as they wrote them.

use serde::{Deserialize, Serialize};

/// Why a template does not parse, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template error at line {line}, column {column}: {message}")]
pub struct TemplateError {
    /// Byte offset of the error in the source.
    pub position: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// A parsed template. Serialised as its source text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Template {
    source: String,
}

impl Template {
    /// Parses a template.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        todo!("notify: parse {source}")
    }

    /// Renders with `context` (a JSON object; dotted names walk into it).
    pub fn render(&self, context: &serde_json::Value) -> String {
        todo!("notify: render {context}")
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl TryFrom<String> for Template {
    type Error = TemplateError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Template> for String {
    fn from(value: Template) -> Self {
        value.source
    }
}
