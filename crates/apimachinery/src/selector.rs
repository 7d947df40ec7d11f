//! Label selectors (string grammar and `LabelSelector` objects) and field selectors.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One requirement: `key op values`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.op {
            Op::Equals | Op::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotEquals | Op::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let (Some(v), Some(bound)) = (value, self.values.first()) else { return false };
                let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else {
                    return false;
                };
                if self.op == Op::GreaterThan { v > bound } else { v < bound }
            }
        }
    }
}

/// A conjunction of requirements. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

/// A selector that matches nothing (a nil `LabelSelector` in some APIs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    Everything,
    Nothing,
    Some(LabelSelector),
}

impl LabelSelector {
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Parses the string grammar of `?labelSelector=` (`a=b,c!=d,e in (x,y),!f,g`).
    pub fn parse(input: &str) -> Result<LabelSelector, String> {
        Parser { chars: input.chars().collect(), pos: 0 }.selector()
    }

    /// Builds a selector from a `metav1.LabelSelector` object
    /// (`{"matchLabels":{..},"matchExpressions":[{key,operator,values}]}`).
    pub fn from_object(value: &Value) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        if let Some(labels) = value.get("matchLabels").and_then(Value::as_object) {
            for (key, v) in labels {
                let v = v.as_str().ok_or_else(|| format!("matchLabels.{key}: must be a string"))?;
                requirements.push(Requirement {
                    key: key.clone(),
                    op: Op::Equals,
                    values: vec![v.to_owned()],
                });
            }
        }
        if let Some(exprs) = value.get("matchExpressions").and_then(Value::as_array) {
            for (i, expr) in exprs.iter().enumerate() {
                let key = expr
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("matchExpressions[{i}].key: Required value"))?;
                let values: Vec<String> = expr
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|vs| vs.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                let op = match expr.get("operator").and_then(Value::as_str) {
                    Some("In") => Op::In,
                    Some("NotIn") => Op::NotIn,
                    Some("Exists") => Op::Exists,
                    Some("DoesNotExist") => Op::DoesNotExist,
                    Some(other) => {
                        return Err(format!(
                            "matchExpressions[{i}].operator: {other:?} is not a valid label selector operator"
                        ));
                    }
                    None => return Err(format!("matchExpressions[{i}].operator: Required value")),
                };
                match op {
                    Op::In | Op::NotIn if values.is_empty() => {
                        return Err(format!(
                            "matchExpressions[{i}].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
                        ));
                    }
                    Op::Exists | Op::DoesNotExist if !values.is_empty() => {
                        return Err(format!(
                            "matchExpressions[{i}].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                        ));
                    }
                    _ => {}
                }
                requirements.push(Requirement { key: key.to_owned(), op, values });
            }
        }
        Ok(LabelSelector { requirements })
    }

    /// The string form (`a=b,c in (x,y)`), as `Scale.status.selector` carries it.
    pub fn to_selector_string(&self) -> String {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r.op {
                Op::Equals => format!("{}={}", r.key, r.values.join(",")),
                Op::NotEquals => format!("{}!={}", r.key, r.values.join(",")),
                Op::In => format!("{} in ({})", r.key, r.values.join(",")),
                Op::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Op::Exists => r.key.clone(),
                Op::DoesNotExist => format!("!{}", r.key),
                Op::GreaterThan => format!("{}>{}", r.key, r.values.join(",")),
                Op::LessThan => format!("{}<{}", r.key, r.values.join(",")),
            })
            .collect();
        parts.join(",")
    }
}

/// Labels of an object (`metadata.labels`) as a sorted map.
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default()
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/')
}

impl Parser {
    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).copied()
    }

    fn ident(&mut self) -> String {
        self.skip_ws();
        let start = self.pos;
        while self.chars.get(self.pos).is_some_and(|c| is_ident_char(*c)) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        let want: Vec<char> = s.chars().collect();
        if self.chars[self.pos..].starts_with(&want) {
            self.pos += want.len();
            true
        } else {
            false
        }
    }

    fn selector(&mut self) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        if self.peek().is_none() {
            return Ok(LabelSelector { requirements });
        }
        loop {
            requirements.push(self.requirement()?);
            match self.peek() {
                None => break,
                Some(',') => self.pos += 1,
                Some(c) => return Err(format!("found '{c}', expected: ',' or end of string")),
            }
        }
        Ok(LabelSelector { requirements })
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        if self.eat("!") {
            let key = self.ident();
            validate_label_key(&key)?;
            return Ok(Requirement { key, op: Op::DoesNotExist, values: vec![] });
        }
        let key = self.ident();
        if key.is_empty() {
            return Err(format!("found '{}', expected: identifier", self.peek().unwrap_or(' ')));
        }
        validate_label_key(&key)?;
        let op = match self.peek() {
            None | Some(',') => return Ok(Requirement { key, op: Op::Exists, values: vec![] }),
            Some('=') => {
                self.pos += 1;
                self.eat("=");
                Op::Equals
            }
            Some('!') => {
                if !self.eat("!=") {
                    return Err("expected '!=' after key".into());
                }
                Op::NotEquals
            }
            Some('>') => {
                self.pos += 1;
                Op::GreaterThan
            }
            Some('<') => {
                self.pos += 1;
                Op::LessThan
            }
            Some(_) => {
                let word = self.ident();
                match word.as_str() {
                    "in" => Op::In,
                    "notin" => Op::NotIn,
                    other => {
                        return Err(format!(
                            "found '{other}', expected: in, notin, =, ==, !=, gt, lt"
                        ));
                    }
                }
            }
        };
        let values = match op {
            Op::In | Op::NotIn => {
                if !self.eat("(") {
                    return Err("found end of string, expected: '('".into());
                }
                let mut values = Vec::new();
                loop {
                    let v = self.ident();
                    validate_label_value(&v)?;
                    values.push(v);
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat(")") {
                        break;
                    }
                    return Err("expected ',' or ')' in set".into());
                }
                values
            }
            Op::GreaterThan | Op::LessThan => {
                let v = self.ident();
                v.parse::<i64>().map_err(|_| format!("{v:?} is not a valid integer"))?;
                vec![v]
            }
            _ => {
                let v = self.ident();
                validate_label_value(&v)?;
                vec![v]
            }
        };
        Ok(Requirement { key, op, values })
    }
}

fn is_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A DNS-1123 subdomain: lowercase alphanumerics, `-` and `.`, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// A DNS-1123 label: lowercase alphanumerics and `-`, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A qualified name (label or annotation key): `[prefix/]name`.
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns1123_subdomain(prefix)
    {
        return Err(format!("invalid label key {key:?}: prefix part must be a DNS-1123 subdomain"));
    }
    if !is_name_part(name) {
        return Err(format!(
            "invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)"
        ));
    }
    Ok(())
}

pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_name_part(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {value:?}: must be 63 characters or less and must be empty or begin and end with an alphanumeric character with '-', '_' or '.' between"
        ))
    }
}

/// One `field op value` term of a field selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    pub equals: bool,
}

/// A conjunction of field requirements (`metadata.name=x,status.phase!=Running`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    pub fn parse(input: &str) -> Result<FieldSelector, String> {
        let mut requirements = Vec::new();
        for term in split_unescaped(input, ',') {
            if term.trim().is_empty() {
                continue;
            }
            let (field, value, equals) = if let Some(i) = find_unescaped(&term, "!=") {
                (&term[..i], &term[i + 2..], false)
            } else if let Some(i) = find_unescaped(&term, "==") {
                (&term[..i], &term[i + 2..], true)
            } else if let Some(i) = find_unescaped(&term, "=") {
                (&term[..i], &term[i + 1..], true)
            } else {
                return Err(format!("invalid selector: {term:?}; can't understand {term:?}"));
            };
            requirements.push(FieldRequirement {
                field: field.trim().to_owned(),
                value: unescape(value.trim()),
                equals,
            });
        }
        Ok(FieldSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Matches against the selectable fields of an object (missing fields compare as "").
    pub fn matches(&self, fields: &dyn Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let actual = fields(&r.field).unwrap_or_default();
            (actual == r.value) == r.equals
        })
    }

    /// The value a selector pins `field` to (`metadata.name=x` → `x`), if any.
    pub fn exact(&self, field: &str) -> Option<&str> {
        self.requirements.iter().find(|r| r.equals && r.field == field).map(|r| r.value.as_str())
    }
}

fn split_unescaped(input: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in input.chars() {
        if escaped {
            current.push('\\');
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    out.push(current);
    out
}

fn find_unescaped(s: &str, pat: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        if s[i..].starts_with(pat) {
            return Some(i);
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A selector (or any text) escaped for a URL query (`app=web,tier in (a,b)` →
/// `app%3Dweb%2Ctier%20in%20%28a%2Cb%29`).
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn string_selectors() {
        let demo = labels(&[("app", "demo"), ("tier", "web")]);
        let other = labels(&[("app", "x")]);
        let none = labels(&[]);
        let cases: &[(&str, [bool; 3])] = &[
            ("", [true, true, true]),
            ("app=demo", [true, false, false]),
            ("app==demo", [true, false, false]),
            ("app!=demo", [false, true, true]),
            ("app in (demo,x)", [true, true, false]),
            ("app notin (demo)", [false, true, true]),
            ("!tier", [false, true, true]),
            ("tier", [true, false, false]),
            ("app=demo,tier=web", [true, false, false]),
            ("app in (demo, x),!tier", [false, true, false]),
            ("  app = demo ", [true, false, false]),
        ];
        for (input, expected) in cases {
            let selector = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            let got = [selector.matches(&demo), selector.matches(&other), selector.matches(&none)];
            assert_eq!(&got, expected, "{input}");
        }
    }

    #[test]
    fn bad_string_selectors_are_errors() {
        for input in
            ["app in demo", "app=demo,", "=x", "app in (a", "app === b", "-bad=x", "app=b c"]
        {
            assert!(LabelSelector::parse(input).is_err(), "{input} should fail");
        }
    }

    #[test]
    fn object_selectors() {
        let selector = LabelSelector::from_object(&json!({
            "matchLabels": {"app": "demo"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "db"]}]
        }))
        .unwrap();
        assert!(selector.matches(&labels(&[("app", "demo"), ("tier", "db")])));
        assert!(!selector.matches(&labels(&[("app", "demo")])));
        assert_eq!(selector.to_selector_string(), "app=demo,tier in (web,db)");
        assert!(
            LabelSelector::from_object(
                &json!({"matchExpressions": [{"key": "a", "operator": "In"}]})
            )
            .is_err()
        );
        assert!(
            LabelSelector::from_object(
                &json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})
            )
            .is_err()
        );
        assert!(LabelSelector::from_object(&json!({})).unwrap().is_empty());
    }

    #[test]
    fn field_selectors() {
        let fields = |f: &str| match f {
            "metadata.name" => Some("w1".to_string()),
            "metadata.namespace" => Some("default".to_string()),
            _ => None,
        };
        let cases = [
            ("metadata.name=w1", true),
            ("metadata.name==w1", true),
            ("metadata.name!=w1", false),
            ("metadata.name=w2", false),
            ("metadata.name=w1,metadata.namespace=default", true),
            ("metadata.namespace!=kube-system", true),
        ];
        for (input, expected) in cases {
            assert_eq!(FieldSelector::parse(input).unwrap().matches(&fields), expected, "{input}");
        }
        let escaped = FieldSelector::parse(r"metadata.name=a\,b").unwrap();
        assert_eq!(escaped.requirements[0].value, "a,b");
        assert_eq!(
            FieldSelector::parse("metadata.name=x").unwrap().exact("metadata.name"),
            Some("x")
        );
        assert!(FieldSelector::parse("nonsense").is_err());
    }

    #[test]
    fn names() {
        assert!(is_dns1123_label("member-1"));
        assert!(!is_dns1123_label("Member"));
        assert!(!is_dns1123_label("-a"));
        assert!(is_dns1123_subdomain("policy.karmada.io"));
        assert!(validate_label_key("propagationpolicy.karmada.io/name").is_ok());
        assert!(validate_label_key("bad key").is_err());
        assert!(validate_label_value("").is_ok());
        assert!(validate_label_value("-x").is_err());
    }
}
