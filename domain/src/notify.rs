//! Notification templates: the Mustache subset the seed's account notification uses
//! (`{{account.name}}`, `{{#queue}}…{{/queue}}`, `{{contact.mobile}}`), also used to fill
//! canned answers' placeholders.
//!
//! A template is parsed when it is saved (parse, don't validate): an account can only hold
//! one that renders. Rendering never escapes HTML: the text goes to agents' notifications
//! as text, and customers' words must arrive as they wrote them.
//!
//! Supported: `{{name}}`, `{{{name}}}` and `{{& name}}` (all three unescaped), dotted names
//! (`{{a.b.c}}`, a numeric segment indexes an array), the implicit iterator `{{.}}`,
//! sections `{{#x}}…{{/x}}` (object: pushes it as context; array: once per element;
//! other truthy value: once), inverted sections `{{^x}}…{{/x}}` and comments `{{! … }}`.
//! Not supported (refused when parsing, so a template never silently means something
//! else): partials `{{> x}}` and delimiter changes `{{=<% %>=}}`. Standalone-line
//! whitespace stripping is not done: the text renders exactly as written.

use serde::{Deserialize, Serialize};

/// The seed's example notification, used for accounts that never set their own.
pub const DEFAULT_NOTIFICATION_TEMPLATE: &str =
    "Account: {{account.name}} {{#queue}}Queue: {{queue.name}} {{/queue}}From : {{contact.mobile}}";

/// Largest template source accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 4096;

/// Deepest nesting of sections accepted (keeps rendering's recursion shallow).
pub const MAX_SECTION_DEPTH: usize = 32;

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

impl TemplateError {
    fn at(source: &str, position: usize, message: impl Into<String>) -> Self {
        // Positions are always char boundaries (tag starts or a floored limit), but stay
        // total anyway: floor to the previous boundary.
        let mut position = position.min(source.len());
        while !source.is_char_boundary(position) {
            position -= 1;
        }
        let before = &source[..position];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self { position, line, column, message: message.into() }
    }
}

/// A name in a tag: `.` (the current context) or a dotted path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    Implicit,
    Path(Vec<String>),
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(String),
    Variable(Name),
    Section { name: Name, inverted: bool, body: Vec<Node> },
}

/// A parsed template. Serialised as its source text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Template {
    source: String,
    nodes: Vec<Node>,
}

/// A section being parsed: its opening tag and the nodes seen so far in its body.
struct Open {
    raw_name: String,
    name: Name,
    inverted: bool,
    position: usize,
    outer: Vec<Node>,
}

impl Template {
    /// Parses a template.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError::at(
                source,
                MAX_TEMPLATE_BYTES,
                format!("template is longer than {MAX_TEMPLATE_BYTES} bytes"),
            ));
        }
        let err = |position: usize, message: String| TemplateError::at(source, position, message);
        let mut open: Vec<Open> = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        let mut i = 0;
        while i < source.len() {
            let Some(offset) = source[i..].find("{{") else {
                push_text(&mut nodes, &source[i..]);
                break;
            };
            let tag = i + offset;
            push_text(&mut nodes, &source[i..tag]);
            if source[tag..].starts_with("{{{") {
                let inner_start = tag + 3;
                let Some(len) = source[inner_start..].find("}}}") else {
                    return Err(err(tag, "unclosed tag: `{{{` without a matching `}}}`".into()));
                };
                let name = parse_name(&source[inner_start..inner_start + len]).map_err(|m| err(tag, m))?;
                nodes.push(Node::Variable(name));
                i = inner_start + len + 3;
                continue;
            }
            let inner_start = tag + 2;
            let Some(len) = source[inner_start..].find("}}") else {
                return Err(err(tag, "unclosed tag: `{{` without a matching `}}`".into()));
            };
            let inner = source[inner_start..inner_start + len].trim();
            i = inner_start + len + 2;
            let mut chars = inner.chars();
            match chars.next() {
                Some('!') => {}
                Some(sigil @ ('#' | '^')) => {
                    let raw = chars.as_str().trim();
                    let name = parse_name(raw).map_err(|m| err(tag, m))?;
                    if open.len() >= MAX_SECTION_DEPTH {
                        return Err(err(tag, format!("sections are nested deeper than {MAX_SECTION_DEPTH}")));
                    }
                    open.push(Open {
                        raw_name: raw.to_string(),
                        name,
                        inverted: sigil == '^',
                        position: tag,
                        outer: std::mem::take(&mut nodes),
                    });
                }
                Some('/') => {
                    let raw = chars.as_str().trim();
                    parse_name(raw).map_err(|m| err(tag, m))?;
                    let Some(section) = open.pop() else {
                        return Err(err(tag, format!("unexpected `{{{{/{raw}}}}}`: no section is open")));
                    };
                    if section.raw_name != raw {
                        let opened = TemplateError::at(source, section.position, "");
                        return Err(err(
                            tag,
                            format!(
                                "`{{{{/{raw}}}}}` does not close the section `{}` opened at line {}, column {}",
                                section.raw_name, opened.line, opened.column
                            ),
                        ));
                    }
                    let body = std::mem::replace(&mut nodes, section.outer);
                    nodes.push(Node::Section { name: section.name, inverted: section.inverted, body });
                }
                Some('&') => {
                    let name = parse_name(chars.as_str()).map_err(|m| err(tag, m))?;
                    nodes.push(Node::Variable(name));
                }
                Some('>') => return Err(err(tag, "partials (`{{>`) are not supported".into())),
                Some('=') => {
                    return Err(err(tag, "delimiter changes (`{{=`) are not supported".into()));
                }
                _ => {
                    let name = parse_name(inner).map_err(|m| err(tag, m))?;
                    nodes.push(Node::Variable(name));
                }
            }
        }
        if let Some(section) = open.pop() {
            return Err(err(
                section.position,
                format!(
                    "unclosed section `{}`: no matching `{{{{/{}}}}}`",
                    section.raw_name, section.raw_name
                ),
            ));
        }
        Ok(Self { source: source.to_string(), nodes })
    }

    /// The built-in notification ([`DEFAULT_NOTIFICATION_TEMPLATE`]).
    pub fn default_notification() -> Self {
        // The constant parses (tested); the fallback only keeps this total.
        Self::parse(DEFAULT_NOTIFICATION_TEMPLATE)
            .unwrap_or_else(|_| Self { source: String::new(), nodes: Vec::new() })
    }

    /// Renders with `context` (a JSON object; dotted names walk into it). Names that are
    /// missing render as nothing; nothing is HTML-escaped.
    pub fn render(&self, context: &serde_json::Value) -> String {
        let mut out = String::new();
        let mut stack = vec![context];
        render_nodes(&self.nodes, &mut stack, &mut out);
        out
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }
}

fn push_text(nodes: &mut Vec<Node>, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(Node::Text(last)) = nodes.last_mut() {
        last.push_str(text);
    } else {
        nodes.push(Node::Text(text.to_string()));
    }
}

/// Parses the name inside a tag (already stripped of its sigil).
fn parse_name(raw: &str) -> Result<Name, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("empty name in tag".into());
    }
    if raw == "." {
        return Ok(Name::Implicit);
    }
    if raw.chars().any(|c| c.is_whitespace() || c == '{' || c == '}') {
        return Err(format!("invalid name `{raw}`: names cannot contain spaces or braces"));
    }
    let segments: Vec<String> = raw.split('.').map(str::to_string).collect();
    if segments.iter().any(String::is_empty) {
        return Err(format!("invalid name `{raw}`: empty segment in a dotted name"));
    }
    Ok(Name::Path(segments))
}

/// Mustache lookup: the first segment in the innermost context that has it, the rest
/// strictly inside that value.
fn lookup<'a>(name: &Name, stack: &[&'a serde_json::Value]) -> Option<&'a serde_json::Value> {
    let segments = match name {
        Name::Implicit => return stack.last().copied(),
        Name::Path(segments) => segments,
    };
    let (first, rest) = segments.split_first()?;
    let mut value = stack.iter().rev().find_map(|frame| child(frame, first))?;
    for segment in rest {
        value = child(value, segment)?;
    }
    Some(value)
}

fn child<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map.get(key),
        serde_json::Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    }
}

fn truthy(value: Option<&serde_json::Value>) -> bool {
    use serde_json::Value;
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(_) => true,
    }
}

fn render_nodes(nodes: &[Node], stack: &mut Vec<&serde_json::Value>, out: &mut String) {
    use serde_json::Value;
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Variable(name) => match lookup(name, stack) {
                Some(Value::String(s)) => out.push_str(s),
                Some(Value::Number(n)) => out.push_str(&n.to_string()),
                Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
                // Null, missing, objects and arrays have no text of their own.
                _ => {}
            },
            Node::Section { name, inverted, body } => {
                let value = lookup(name, stack);
                if *inverted {
                    if !truthy(value) {
                        render_nodes(body, stack, out);
                    }
                    continue;
                }
                let Some(value) = value.filter(|v| truthy(Some(v))) else {
                    continue;
                };
                match value {
                    Value::Array(items) => {
                        for item in items {
                            stack.push(item);
                            render_nodes(body, stack, out);
                            stack.pop();
                        }
                    }
                    _ => {
                        stack.push(value);
                        render_nodes(body, stack, out);
                        stack.pop();
                    }
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn render(source: &str, context: serde_json::Value) -> String {
        Template::parse(source).expect("template parses").render(&context)
    }

    fn error(source: &str) -> TemplateError {
        Template::parse(source).expect_err("template must not parse")
    }

    #[test]
    fn seed_example_with_a_queue() {
        let context = json!({
            "account": {"name": "Acme Support", "key": "ACME"},
            "queue": {"name": "Sales"},
            "contact": {"mobile": "+5511999990000", "name": "Ana"},
        });
        assert_eq!(
            render(DEFAULT_NOTIFICATION_TEMPLATE, context),
            "Account: Acme Support Queue: Sales From : +5511999990000"
        );
    }

    #[test]
    fn seed_example_without_a_queue() {
        let context = json!({
            "account": {"name": "Acme Support"},
            "contact": {"mobile": "+5511999990000"},
        });
        assert_eq!(
            render(DEFAULT_NOTIFICATION_TEMPLATE, context.clone()),
            "Account: Acme Support From : +5511999990000"
        );
        // A null queue is the same as no queue.
        let mut with_null = context;
        with_null["queue"] = serde_json::Value::Null;
        assert_eq!(
            render(DEFAULT_NOTIFICATION_TEMPLATE, with_null),
            "Account: Acme Support From : +5511999990000"
        );
    }

    #[test]
    fn default_notification_is_the_seed_example() {
        let template = Template::default_notification();
        assert_eq!(template.source(), DEFAULT_NOTIFICATION_TEMPLATE);
        assert!(!template.nodes.is_empty());
    }

    #[test]
    fn nothing_is_html_escaped() {
        let context = json!({"message": {"text": "<b>5 > 3 & \"quotes\" 'too'</b>"}});
        let expected = "<b>5 > 3 & \"quotes\" 'too'</b>";
        assert_eq!(render("{{message.text}}", context.clone()), expected);
        assert_eq!(render("{{{message.text}}}", context.clone()), expected);
        assert_eq!(render("{{& message.text}}", context), expected);
    }

    #[test]
    fn missing_names_render_empty() {
        assert_eq!(render("[{{nope}}][{{a.b.c}}][{{{x}}}]", json!({"a": {"b": 1}})), "[][][]");
        assert_eq!(render("[{{a}}]", json!(null)), "[]");
        assert_eq!(render("[{{a}}]", json!("not an object")), "[]");
    }

    #[test]
    fn scalars_render_as_text_and_containers_as_nothing() {
        let context =
            json!({"n": 42, "f": 1.5, "t": true, "no": false, "o": {"a": 1}, "l": [1, 2], "z": null});
        assert_eq!(
            render("{{n}} {{f}} {{t}} {{no}} [{{o}}] [{{l}}] [{{z}}]", context),
            "42 1.5 true false [] [] []"
        );
    }

    #[test]
    fn whitespace_inside_tags_is_ignored() {
        let context = json!({"a": {"b": "x"}, "s": {"v": "y"}});
        assert_eq!(render("{{ a.b }}|{{{ a.b }}}|{{#  s }}{{ v }}{{/ s  }}", context), "x|x|y");
    }

    #[test]
    fn text_without_tags_renders_as_is() {
        assert_eq!(render("", json!({})), "");
        assert_eq!(render("plain text, no tags } { }} ", json!({})), "plain text, no tags } { }} ");
        assert_eq!(render("olá 👋 {{name}}", json!({"name": "Zé"})), "olá 👋 Zé");
    }

    #[test]
    fn sections_follow_truthiness() {
        let t = "{{#v}}yes{{/v}}{{^v}}no{{/v}}";
        for (value, expected) in [
            (json!(true), "yes"),
            (json!(false), "no"),
            (json!(null), "no"),
            (json!(""), "no"),
            (json!("x"), "yes"),
            (json!(0), "yes"),
            (json!([]), "no"),
            (json!({}), "yes"),
        ] {
            assert_eq!(render(t, json!({"v": value})), expected, "value {value}");
        }
        assert_eq!(render(t, json!({})), "no");
    }

    #[test]
    fn object_sections_push_context_and_fall_back_to_outer_names() {
        let context = json!({"queue": {"name": "Sales"}, "account": {"name": "Acme"}, "name": "outer"});
        assert_eq!(
            render("{{#queue}}{{name}}/{{account.name}}{{/queue}} {{name}}", context),
            "Sales/Acme outer"
        );
    }

    #[test]
    fn dotted_names_resolve_strictly_after_the_first_segment() {
        // `a.b` finds `a` in the inner context, then `b` only inside it (no fallback to outer `a.b`).
        let context = json!({"a": {"b": "outer"}, "s": {"a": {"c": 1}}});
        assert_eq!(render("{{#s}}[{{a.b}}]{{/s}}", context), "[]");
    }

    #[test]
    fn array_sections_iterate_and_dot_is_the_element() {
        let context = json!({"tags": ["vip", "late"], "items": [{"n": "a"}, {"n": "b"}]});
        assert_eq!(render("{{#tags}}<{{.}}>{{/tags}}", context.clone()), "<vip><late>");
        assert_eq!(render("{{#items}}{{n}},{{/items}}", context.clone()), "a,b,");
        assert_eq!(render("{{items.1.n}} {{tags.0}} {{tags.9}}", context), "b vip ");
    }

    #[test]
    fn scalar_sections_render_once_with_the_value_as_dot() {
        assert_eq!(render("{{#name}}Hi {{.}}!{{/name}}", json!({"name": "Ana"})), "Hi Ana!");
    }

    #[test]
    fn nested_sections() {
        let t = "{{#a}}{{#b}}{{c}}{{/b}}{{^b}}none{{/b}}{{/a}}";
        assert_eq!(render(t, json!({"a": {"b": {"c": "deep"}}})), "deep");
        assert_eq!(render(t, json!({"a": {"c": "x"}})), "none");
        assert_eq!(render(t, json!({})), "");
    }

    #[test]
    fn comments_render_nothing() {
        assert_eq!(render("a{{! a comment with {{braces }}b", json!({})), "ab");
        assert_eq!(render("a{{!}}b", json!({})), "ab");
    }

    #[test]
    fn unclosed_tag_reports_its_position() {
        let e = error("Hello {{name");
        assert_eq!((e.position, e.line, e.column), (6, 1, 7));
        assert!(e.message.contains("unclosed tag"), "{}", e.message);
        let e = error("Hi\n  {{{name}}");
        assert_eq!((e.position, e.line, e.column), (5, 2, 3));
        assert!(e.message.contains("}}}"), "{}", e.message);
        let e = error("{{");
        assert_eq!((e.position, e.line, e.column), (0, 1, 1));
    }

    #[test]
    fn unclosed_section_reports_where_it_opened() {
        let e = error("x\n{{#queue}}Queue: {{queue.name}}");
        assert_eq!((e.position, e.line, e.column), (2, 2, 1));
        assert!(e.message.contains("unclosed section `queue`"), "{}", e.message);
        let e = error("{{#a}}{{/a}}{{^b}}");
        assert_eq!(e.position, 12);
    }

    #[test]
    fn mismatched_close_reports_the_close_and_the_open() {
        let e = error("{{#a}}\n{{#b}}x{{/a}}");
        assert_eq!((e.position, e.line, e.column), (14, 2, 8));
        assert!(e.message.contains("`b` opened at line 2, column 1"), "{}", e.message);
    }

    #[test]
    fn unexpected_close_is_refused() {
        let e = error("ab{{/queue}}");
        assert_eq!((e.position, e.line, e.column), (2, 1, 3));
        assert!(e.message.contains("no section is open"), "{}", e.message);
    }

    #[test]
    fn empty_and_malformed_names_are_refused() {
        for (source, position) in [
            ("{{}}", 0),
            ("a {{ }}", 2),
            ("{{{}}}", 0),
            ("{{&}}", 0),
            ("{{#}}{{/}}", 0),
            ("{{^ }}", 0),
            ("{{#a}}{{/}}", 6),
            ("{{a..b}}", 0),
            ("{{.a}}", 0),
            ("{{a.}}", 0),
            ("{{a b}}", 0),
            ("{{ {a}}}", 0),
        ] {
            let e = error(source);
            assert_eq!(e.position, position, "{source}: {}", e.message);
        }
        assert!(error("{{}}").message.contains("empty name"));
    }

    #[test]
    fn partials_and_delimiter_changes_are_refused() {
        assert!(error("{{> footer}}").message.contains("partials"));
        assert!(error("{{=<% %>=}}").message.contains("delimiter"));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let e = error("çã 👋 {{");
        assert_eq!(e.position, "çã 👋 ".len());
        assert_eq!((e.line, e.column), (1, 6));
    }

    #[test]
    fn size_limit() {
        let exactly = "a".repeat(MAX_TEMPLATE_BYTES);
        assert!(Template::parse(&exactly).is_ok());
        let e = error(&format!("{exactly}b"));
        assert_eq!(e.position, MAX_TEMPLATE_BYTES);
        assert!(e.message.contains("4096 bytes"), "{}", e.message);
        // A multi-byte character straddling the limit: the position floors to a boundary.
        let straddling = format!("{}é", "a".repeat(MAX_TEMPLATE_BYTES - 1));
        let e = error(&straddling);
        assert_eq!(e.position, MAX_TEMPLATE_BYTES - 1);
    }

    #[test]
    fn depth_limit() {
        let ok = format!("{}{}", "{{#a}}".repeat(MAX_SECTION_DEPTH), "{{/a}}".repeat(MAX_SECTION_DEPTH));
        assert!(Template::parse(&ok).is_ok());
        let deep =
            format!("{}{}", "{{#a}}".repeat(MAX_SECTION_DEPTH + 1), "{{/a}}".repeat(MAX_SECTION_DEPTH + 1));
        let e = error(&deep);
        assert_eq!(e.position, 6 * MAX_SECTION_DEPTH);
        assert!(e.message.contains("nested"));
    }

    #[test]
    fn error_displays_line_and_column() {
        assert_eq!(
            error("{{/x}}").to_string(),
            "template error at line 1, column 1: unexpected `{{/x}}`: no section is open"
        );
    }

    #[test]
    fn serde_is_the_source_text_and_refuses_bad_templates() {
        let template = Template::parse("Hi {{contact.name}}").expect("parses");
        let json = serde_json::to_string(&template).expect("serialises");
        assert_eq!(json, "\"Hi {{contact.name}}\"");
        let back: Template = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, template);
        assert!(serde_json::from_str::<Template>("\"{{#x}}\"").is_err());
    }

    fn mustache_like() -> impl Strategy<Value = String> {
        let pieces = prop::collection::vec(
            prop_oneof![
                Just("{{".to_string()),
                Just("}}".to_string()),
                Just("{{{".to_string()),
                Just("}}}".to_string()),
                Just("{{#a}}".to_string()),
                Just("{{^a}}".to_string()),
                Just("{{/a}}".to_string()),
                Just("{{#l}}".to_string()),
                Just("{{/l}}".to_string()),
                Just("{{.}}".to_string()),
                Just("{{a.b}}".to_string()),
                Just("{{!c}}".to_string()),
                Just("{{&a}}".to_string()),
                Just("\n".to_string()),
                "[a-z.#^/!& {}é👋]{0,4}",
            ],
            0..40,
        );
        pieces.prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn parsing_and_rendering_never_panic(source in any::<String>()) {
            check(&source)?;
        }

        #[test]
        fn mustache_like_input_never_panics(source in mustache_like()) {
            check(&source)?;
        }
    }

    fn check(source: &str) -> Result<(), TestCaseError> {
        match Template::parse(source) {
            Ok(template) => {
                prop_assert_eq!(template.source(), source);
                let context = json!({"a": {"b": "x", "a": [1, {"b": 2}]}, "l": ["p", "q"], "c": null});
                let _ = template.render(&context);
                let _ = template.render(&json!(null));
            }
            Err(e) => {
                prop_assert!(e.position <= source.len());
                prop_assert!(source.is_char_boundary(e.position));
                prop_assert!(e.line >= 1 && e.column >= 1);
            }
        }
        Ok(())
    }
}
