//! Values between JSON and Lua, with the conventions upstream's scripts are written for
//! (gopher-lua and its JSON module):
//!
//! - into Lua: objects and arrays become tables, `null` becomes `nil` (so a key whose value
//!   is null is absent), every number is a Lua number;
//! - out of Lua: a table whose keys are all strings is an object, one whose keys are exactly
//!   `1..n` is an array, an empty table is `[]`; mixed or sparse keys, functions and NaN are
//!   errors; a whole number is a JSON integer;
//! - an empty table cannot say whether it was `{}` or `[]`: [`restore_empty`] decides from
//!   the objects the script was given (references): where a reference had `{}` at the same
//!   field path it becomes `{}`, where it had `[]` it stays, elsewhere the field is dropped.

use std::collections::HashSet;

use mlua::{Lua, Table, Value as LuaValue};
use serde_json::{Map, Number, Value};

/// Deepest table nesting converted out of Lua (a script can build any depth).
const MAX_DEPTH: usize = 256;

/// A JSON value as a Lua value.
pub fn to_lua(lua: &Lua, value: &Value) -> mlua::Result<LuaValue> {
    Ok(match value {
        Value::Null => LuaValue::Nil,
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::Number(n) => LuaValue::Number(n.as_f64().unwrap_or_default()),
        Value::String(s) => LuaValue::String(lua.create_string(s)?),
        Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            LuaValue::Table(table)
        }
        Value::Object(fields) => {
            let table = lua.create_table_with_capacity(0, fields.len())?;
            for (k, v) in fields {
                if !v.is_null() {
                    table.raw_set(k.as_str(), to_lua(lua, v)?)?;
                }
            }
            LuaValue::Table(table)
        }
    })
}

/// A Lua value as JSON (see the module's conventions); the error says what cannot be encoded.
pub fn to_json(value: &LuaValue) -> Result<Value, String> {
    let mut open = Vec::new();
    encode(value, &mut open)
}

fn encode(value: &LuaValue, open: &mut Vec<usize>) -> Result<Value, String> {
    Ok(match value {
        LuaValue::Nil => Value::Null,
        LuaValue::Boolean(b) => Value::Bool(*b),
        LuaValue::Integer(i) => Value::from(*i),
        LuaValue::Number(n) => number(*n)?,
        LuaValue::String(s) => Value::String(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
        LuaValue::Table(t) => table(t, open)?,
        other => return Err(format!("cannot encode {} to JSON", other.type_name())),
    })
}

/// A Lua number as JSON: a whole number within 2^63 is an integer, as Go prints it.
fn number(n: f64) -> Result<Value, String> {
    if !n.is_finite() {
        return Err(format!("cannot encode number {n} to JSON"));
    }
    if n.fract() == 0.0 && n.abs() < 9.2e18 {
        return Ok(Value::from(n as i64));
    }
    Number::from_f64(n)
        .map(Value::Number)
        .ok_or_else(|| format!("cannot encode number {n} to JSON"))
}

fn table(t: &Table, open: &mut Vec<usize>) -> Result<Value, String> {
    let id = t.to_pointer() as usize;
    if open.contains(&id) {
        return Err("cannot encode recursively nested tables to JSON".into());
    }
    if open.len() >= MAX_DEPTH {
        return Err(format!("cannot encode tables nested deeper than {MAX_DEPTH} to JSON"));
    }
    let mut pairs = Vec::new();
    for pair in t.pairs::<LuaValue, LuaValue>() {
        pairs.push(pair.map_err(|e| e.to_string())?);
    }
    open.push(id);
    let out = entries(&pairs, open);
    open.pop();
    out
}

/// A table's entries as an object (string keys), an array (keys exactly `1..n`) or `[]`.
fn entries(pairs: &[(LuaValue, LuaValue)], open: &mut Vec<usize>) -> Result<Value, String> {
    let mixed = || "cannot encode mixed or invalid key types".to_owned();
    match pairs.first() {
        None => Ok(Value::Array(Vec::new())),
        Some((LuaValue::String(_), _)) => {
            let mut fields = Map::new();
            for (k, v) in pairs {
                let LuaValue::String(k) = k else { return Err(mixed()) };
                fields
                    .insert(String::from_utf8_lossy(&k.as_bytes()).into_owned(), encode(v, open)?);
            }
            Ok(Value::Object(fields))
        }
        Some((LuaValue::Integer(_) | LuaValue::Number(_), _)) => {
            let mut items: Vec<(usize, &LuaValue)> = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                let index = match k {
                    LuaValue::Integer(i) => *i as f64,
                    LuaValue::Number(n) => *n,
                    _ => return Err(mixed()),
                };
                if index.fract() != 0.0 || index < 1.0 || index > pairs.len() as f64 {
                    return Err("cannot encode sparse array".into());
                }
                items.push((index as usize, v));
            }
            items.sort_by_key(|(i, _)| *i);
            let mut array = Vec::with_capacity(items.len());
            for (expected, (i, v)) in items.into_iter().enumerate() {
                if i != expected + 1 {
                    return Err("cannot encode sparse array".into());
                }
                array.push(encode(v, open)?);
            }
            Ok(Value::Array(array))
        }
        Some(_) => Err(mixed()),
    }
}

/// Field paths (object keys from the root, array positions left out) of the empty arrays and
/// empty objects in `value`.
#[derive(Default)]
struct Empties {
    arrays: HashSet<Vec<String>>,
    objects: HashSet<Vec<String>>,
}

impl Empties {
    fn collect(&mut self, value: &Value, path: &mut Vec<String>) {
        let visit = |this: &mut Self, child: &Value, path: &mut Vec<String>| match child {
            Value::Array(a) if a.is_empty() => {
                this.arrays.insert(path.clone());
            }
            Value::Object(o) if o.is_empty() => {
                this.objects.insert(path.clone());
            }
            Value::Array(_) | Value::Object(_) => this.collect(child, path),
            _ => {}
        };
        match value {
            Value::Object(fields) => {
                for (k, child) in fields {
                    path.push(k.clone());
                    visit(self, child, path);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for child in items {
                    visit(self, child, path);
                }
            }
            _ => {}
        }
    }
}

/// What a script's result becomes once its empty tables are decided (module docs): `object`
/// says whether the result as a whole is an object (then a bare `[]` is `{}`).
pub fn restore_empty(mut result: Value, object: bool, references: &[&Value]) -> Value {
    if result.as_array().is_some_and(Vec::is_empty) {
        return if object { Value::Object(Map::new()) } else { result };
    }
    let mut empties = Empties::default();
    for reference in references {
        empties.collect(reference, &mut Vec::new());
    }
    fix(&mut result, &mut Vec::new(), &empties);
    result
}

/// `Some(replacement)` for an empty array at `path`, `None` to drop it.
fn decide(path: &[String], empties: &Empties) -> Option<Value> {
    if empties.objects.contains(path) {
        Some(Value::Object(Map::new()))
    } else if empties.arrays.contains(path) {
        Some(Value::Array(Vec::new()))
    } else {
        None
    }
}

fn is_empty_array(v: &Value) -> bool {
    v.as_array().is_some_and(Vec::is_empty)
}

fn fix(value: &mut Value, path: &mut Vec<String>, empties: &Empties) {
    match value {
        Value::Object(fields) => {
            let keys: Vec<String> = fields.keys().cloned().collect();
            for k in keys {
                path.push(k.clone());
                if fields.get(&k).is_some_and(is_empty_array) {
                    match decide(path, empties) {
                        Some(v) => {
                            fields.insert(k, v);
                        }
                        None => {
                            fields.remove(&k);
                        }
                    }
                } else if let Some(child) = fields.get_mut(&k) {
                    fix(child, path, empties);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            let mut kept = Vec::with_capacity(items.len());
            for mut child in items.drain(..) {
                if is_empty_array(&child) {
                    if let Some(v) = decide(path, empties) {
                        kept.push(v);
                    }
                } else {
                    fix(&mut child, path, empties);
                    kept.push(child);
                }
            }
            *items = kept;
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(v: &Value) -> Result<Value, String> {
        let lua = Lua::new();
        let l = to_lua(&lua, v).map_err(|e| e.to_string())?;
        to_json(&l)
    }

    #[test]
    fn values_cross_as_upstream_scripts_expect() {
        let cases = [
            (json!({"a": 1, "b": "x", "c": true}), json!({"a": 1, "b": "x", "c": true})),
            (json!([1, 2.5, "z"]), json!([1, 2.5, "z"])),
            // null fields are absent in Lua.
            (json!({"a": null, "b": 1}), json!({"b": 1})),
            // Empty containers are indistinguishable: both come back as [].
            (json!({"o": {}, "a": []}), json!({"o": [], "a": []})),
            (json!({}), json!([])),
            (json!(3.0), json!(3)),
            (json!(-7), json!(-7)),
        ];
        for (input, want) in cases {
            assert_eq!(round_trip(&input), Ok(want), "{input}");
        }
    }

    #[test]
    fn tables_that_json_cannot_hold_are_errors() {
        let lua = Lua::new();
        for (script, want) in [
            ("return {1, nil, 3}", "sparse"),
            ("return {[2] = 1}", "sparse"),
            ("return {1, x = 2}", "mixed"),
            ("local t = {} t.self = t return t", "recursively"),
            ("return {f = function() end}", "function"),
            ("return {n = 0/0}", "number"),
            ("return {[true] = 1}", "mixed"),
        ] {
            let v: LuaValue = lua.load(script).eval().expect("script runs");
            let err = to_json(&v).expect_err(script);
            assert!(err.contains(want), "{script}: {err}");
        }
    }

    #[test]
    fn empty_tables_follow_the_references() {
        let desired = json!({"spec": {"selector": {}, "ports": [], "template": {"containers": [{"resources": {}}]}}});
        let result = json!({"spec": {"selector": [], "ports": [], "extra": [], "template": {"containers": [{"resources": []}]}}});
        assert_eq!(
            restore_empty(result, true, &[&desired]),
            json!({"spec": {"selector": {}, "ports": [], "template": {"containers": [{"resources": {}}]}}})
        );
        assert_eq!(restore_empty(json!([]), true, &[]), json!({}));
        assert_eq!(restore_empty(json!([]), false, &[]), json!([]));
        // Without references every empty table is dropped.
        assert_eq!(restore_empty(json!({"nodeClaim": [], "n": 1}), true, &[]), json!({"n": 1}));
        assert_eq!(restore_empty(json!({"list": [[], 1]}), true, &[]), json!({"list": [1]}));
    }

    proptest::proptest! {
        #[test]
        fn json_without_empty_containers_or_nulls_round_trips(v in arb_json()) {
            proptest::prop_assert_eq!(round_trip(&v), Ok(v));
        }
    }

    /// JSON that survives Lua unchanged: no nulls, no empty containers, whole numbers as
    /// integers.
    fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            (-1_000_000_000i64..1_000_000_000).prop_map(Value::from),
            (-1e6f64..1e6).prop_filter("fractional", |f| f.fract() != 0.0).prop_map(Value::from),
            "[a-z0-9 ]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 1..5).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,6}", inner, 1..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
