//! The JSONPath subset used by CRD `additionalPrinterColumns` and `kubectl wait --for=jsonpath`:
//! `.a.b`, `['key']`, `[N]`, `[*]`, and filters `[?(@.x.y=="v")]` / `!=`.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Field(String),
    Index(i64),
    All,
    Filter { path: Vec<String>, value: Value, equals: bool },
}

/// A compiled path.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPath {
    segments: Vec<Segment>,
}

impl JsonPath {
    pub fn parse(input: &str) -> Result<JsonPath, String> {
        let trimmed = input.trim();
        let inner =
            trimmed.strip_prefix('{').and_then(|s| s.strip_suffix('}')).unwrap_or(trimmed).trim();
        let chars: Vec<char> = inner.chars().collect();
        let mut i = 0;
        let mut segments = Vec::new();
        if chars.first() == Some(&'$') {
            i = 1;
        }
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    i += 1;
                    let start = i;
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        if chars[i] == '\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                    let name: String = chars[start..i.min(chars.len())].iter().collect();
                    let name = name.replace("\\.", ".");
                    if name.is_empty() {
                        if start == chars.len() {
                            break;
                        }
                        return Err(format!("unsupported path {input:?}: empty field name"));
                    }
                    segments.push(Segment::Field(name));
                }
                '[' => {
                    let close = find_close(&chars, i)
                        .ok_or_else(|| format!("unclosed '[' in path {input:?}"))?;
                    let body: String = chars[i + 1..close].iter().collect();
                    segments.push(parse_bracket(body.trim(), input)?);
                    i = close + 1;
                }
                c => return Err(format!("unexpected {c:?} in path {input:?}")),
            }
        }
        Ok(JsonPath { segments })
    }

    /// Every value the path selects.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![root];
        for segment in &self.segments {
            let mut next = Vec::new();
            for value in current {
                match segment {
                    Segment::Field(name) => {
                        if let Some(v) = value.get(name) {
                            next.push(v);
                        }
                    }
                    Segment::Index(index) => {
                        if let Some(items) = value.as_array() {
                            let len = items.len() as i64;
                            let i = if *index < 0 { len + index } else { *index };
                            if (0..len).contains(&i) {
                                next.push(&items[i as usize]);
                            }
                        }
                    }
                    Segment::All => match value {
                        Value::Array(items) => next.extend(items.iter()),
                        Value::Object(map) => next.extend(map.values()),
                        _ => {}
                    },
                    Segment::Filter { path, value: want, equals } => {
                        if let Some(items) = value.as_array() {
                            for item in items {
                                let got = path.iter().try_fold(item, |v, k| v.get(k));
                                let matched = got.is_some_and(|g| loosely_equal(g, want));
                                if matched == *equals && (got.is_some() || !*equals) {
                                    next.push(item);
                                }
                            }
                        }
                    }
                }
            }
            current = next;
        }
        current
    }

    /// The values rendered as kubectl's jsonpath printer does: strings raw, others as JSON,
    /// several values joined by spaces.
    pub fn render(&self, root: &Value) -> Option<String> {
        let found = self.find(root);
        if found.is_empty() {
            return None;
        }
        let parts: Vec<String> = found
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        Some(parts.join(" "))
    }
}

fn loosely_equal(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::String(a), Value::String(b)) => a == b,
        (a, Value::String(b)) => serde_json::to_string(a).is_ok_and(|rendered| rendered == *b),
        (a, b) => a == b,
    }
}

fn find_close(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, c) in chars.iter().enumerate().skip(open) {
        match (quote, c) {
            (Some(q), c) if *c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(*c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn parse_bracket(body: &str, input: &str) -> Result<Segment, String> {
    if body == "*" {
        return Ok(Segment::All);
    }
    if let Some(quoted) = strip_quotes(body) {
        return Ok(Segment::Field(quoted.to_owned()));
    }
    if let Ok(index) = body.parse::<i64>() {
        return Ok(Segment::Index(index));
    }
    if let Some(filter) = body.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
        let (lhs, rhs, equals) = if let Some((l, r)) = filter.split_once("==") {
            (l, r, true)
        } else if let Some((l, r)) = filter.split_once("!=") {
            (l, r, false)
        } else {
            return Err(format!("unsupported filter in {input:?}"));
        };
        let path = lhs
            .trim()
            .strip_prefix("@.")
            .ok_or_else(|| format!("filter must start with '@.' in {input:?}"))?
            .split('.')
            .map(str::to_owned)
            .collect();
        let rhs = rhs.trim();
        let value = match strip_quotes(rhs) {
            Some(s) => Value::String(s.to_owned()),
            None => serde_json::from_str(rhs).unwrap_or(Value::String(rhs.to_owned())),
        };
        return Ok(Segment::Filter { path, value, equals });
    }
    Err(format!("unsupported subscript [{body}] in {input:?}"))
}

fn strip_quotes(s: &str) -> Option<&str> {
    s.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let doc = json!({
            "spec": {"size": 3, "color": "red", "list": [1, 2, 3]},
            "metadata": {"labels": {"app.kubernetes.io/name": "x"}},
            "status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "Applied", "status": "False"}
            ]}
        });
        let cases = [
            (".spec.size", Some("3")),
            (".spec.color", Some("red")),
            ("{.spec.color}", Some("red")),
            (".spec.list[1]", Some("2")),
            (".spec.list[-1]", Some("3")),
            (".spec.list[*]", Some("1 2 3")),
            (".spec.missing", None),
            (".status.conditions[?(@.type==\"Ready\")].status", Some("True")),
            (".status.conditions[?(@.type=='Applied')].status", Some("False")),
            (".status.conditions[?(@.type!=\"Ready\")].type", Some("Applied")),
            (".metadata.labels['app.kubernetes.io/name']", Some("x")),
            (".metadata.labels.app\\.kubernetes\\.io/name", Some("x")),
        ];
        for (path, want) in cases {
            let compiled = JsonPath::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(compiled.render(&doc).as_deref(), want, "{path}");
        }
        assert!(JsonPath::parse(".spec[").is_err());
        assert!(JsonPath::parse("spec").is_err());
    }
}
