//! JSON patch (RFC 6902) as the Kubernetes API server applies it (evanphx/json-patch v4): a
//! `test` of `null` on a missing path succeeds (kube-rs' finalizer helper relies on it), and a
//! `replace` of a missing member of an existing object sets it (clients replace fields that
//! Go's `omitempty` left out, such as `/spec/propagateDeps`).

use serde_json::Value;

use super::PatchError;

/// Applies every operation in order; on failure `doc` is left unchanged.
pub fn apply(doc: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops = patch.as_array().ok_or_else(|| {
        PatchError::Malformed("a JSON patch must be an array of operations".into())
    })?;
    let mut work = doc.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_op(&mut work, op).map_err(|e| match e {
            PatchError::Malformed(m) => PatchError::Malformed(format!("operation {i}: {m}")),
            PatchError::Failed(m) => PatchError::Failed(m),
        })?;
    }
    *doc = work;
    Ok(())
}

fn field<'a>(op: &'a Value, name: &str) -> Result<&'a Value, PatchError> {
    op.get(name).ok_or_else(|| PatchError::Malformed(format!("missing {name:?}")))
}

fn str_field<'a>(op: &'a Value, name: &str) -> Result<&'a str, PatchError> {
    field(op, name)?
        .as_str()
        .ok_or_else(|| PatchError::Malformed(format!("{name:?} must be a string")))
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), PatchError> {
    let kind = str_field(op, "op")?;
    let path = parse_pointer(str_field(op, "path")?)?;
    match kind {
        "add" => add(doc, &path, field(op, "value")?.clone()),
        "remove" => remove(doc, &path).map(drop),
        "replace" => {
            let value = field(op, "value")?.clone();
            if let Some(target) = get_mut(doc, &path) {
                *target = value;
                return Ok(());
            }
            let missing = |what: &str| {
                PatchError::Failed(format!(
                    "replace operation does not apply: doc is missing {what}: {}",
                    render(&path)
                ))
            };
            let (last, parent) = path.split_last().ok_or_else(|| missing("path"))?;
            match get_mut(doc, parent) {
                Some(Value::Object(members)) => {
                    members.insert(last.clone(), value);
                    Ok(())
                }
                Some(_) => Err(missing("key")),
                None => Err(missing("path")),
            }
        }
        "move" => {
            let from = parse_pointer(str_field(op, "from")?)?;
            if path.starts_with(&from) && path.len() > from.len() {
                return Err(PatchError::Failed(
                    "cannot move a value into one of its children".into(),
                ));
            }
            let value = remove(doc, &from)?;
            add(doc, &path, value)
        }
        "copy" => {
            let from = parse_pointer(str_field(op, "from")?)?;
            let value = get(doc, &from)
                .ok_or_else(|| {
                    PatchError::Failed(format!("copy from missing path {}", render(&from)))
                })?
                .clone();
            add(doc, &path, value)
        }
        "test" => {
            let want = field(op, "value")?;
            match get(doc, &path) {
                Some(got) if got == want => Ok(()),
                None if want.is_null() => Ok(()),
                _ => Err(PatchError::Failed(format!(
                    "testing value {} failed: test failed",
                    render(&path)
                ))),
            }
        }
        other => Err(PatchError::Malformed(format!("unknown operation {other:?}"))),
    }
}

/// Splits a JSON pointer into unescaped segments.
pub fn parse_pointer(pointer: &str) -> Result<Vec<String>, PatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| PatchError::Malformed(format!("invalid JSON pointer {pointer:?}")))?;
    Ok(rest.split('/').map(|s| s.replace("~1", "/").replace("~0", "~")).collect())
}

fn render(path: &[String]) -> String {
    path.iter().map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1"))).collect()
}

fn index(segment: &str, len: usize, allow_end: bool) -> Option<usize> {
    if segment == "-" {
        return allow_end.then_some(len);
    }
    if segment.len() > 1 && segment.starts_with('0') {
        return None;
    }
    let i: usize = segment.parse().ok()?;
    (i < len || (allow_end && i == len)).then_some(i)
}

pub fn get<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => a.get(index(seg, a.len(), false)?),
        _ => None,
    })
}

fn get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(doc, |v, seg| match v {
        Value::Object(m) => m.get_mut(seg),
        Value::Array(a) => {
            let i = index(seg, a.len(), false)?;
            a.get_mut(i)
        }
        _ => None,
    })
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), PatchError> {
    let Some((last, parent)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    let missing = || {
        PatchError::Failed(format!(
            "add operation does not apply: doc is missing path: {}",
            render(path)
        ))
    };
    match get_mut(doc, parent).ok_or_else(missing)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let i = index(last, a.len(), true).ok_or_else(|| {
                PatchError::Failed(format!(
                    "add operation does not apply: index out of bounds: {}",
                    render(path)
                ))
            })?;
            a.insert(i, value);
            Ok(())
        }
        _ => Err(missing()),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, PatchError> {
    let missing = || {
        PatchError::Failed(format!(
            "remove operation does not apply: doc is missing path: \"{}\"",
            render(path)
        ))
    };
    let (last, parent) = path.split_last().ok_or_else(missing)?;
    match get_mut(doc, parent).ok_or_else(missing)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i = index(last, a.len(), false).ok_or_else(missing)?;
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(doc: Value, patch: Value, want: Result<Value, &str>) {
        let mut got = doc.clone();
        let result = apply(&mut got, &patch);
        match want {
            Ok(want) => {
                assert_eq!(result, Ok(()), "patch {patch}");
                assert_eq!(got, want, "patch {patch}");
            }
            Err(kind) => {
                let err = result.expect_err("patch should fail");
                let actual = match err {
                    PatchError::Malformed(_) => "malformed",
                    PatchError::Failed(_) => "failed",
                };
                assert_eq!(actual, kind, "patch {patch}: {err}");
                assert_eq!(got, doc, "a failed patch leaves the document unchanged");
            }
        }
    }

    #[test]
    fn operations() {
        let doc = json!({"spec": {"size": 3, "list": [1, 2]}, "metadata": {"name": "w1"}});
        check(
            doc.clone(),
            json!([{"op": "replace", "path": "/spec/size", "value": 4}]),
            Ok(json!({"spec": {"size": 4, "list": [1, 2]}, "metadata": {"name": "w1"}})),
        );
        check(
            doc.clone(),
            json!([{"op": "test", "path": "/spec/size", "value": 3}, {"op": "replace", "path": "/spec/size", "value": 4}]),
            Ok(json!({"spec": {"size": 4, "list": [1, 2]}, "metadata": {"name": "w1"}})),
        );
        check(
            doc.clone(),
            json!([{"op": "test", "path": "/spec/size", "value": 9}]),
            Err("failed"),
        );
        check(
            doc.clone(),
            json!([{"op": "add", "path": "/spec/list/-", "value": 3}]),
            Ok(json!({"spec": {"size": 3, "list": [1, 2, 3]}, "metadata": {"name": "w1"}})),
        );
        check(
            doc.clone(),
            json!([{"op": "add", "path": "/spec/list/0", "value": 0}]),
            Ok(json!({"spec": {"size": 3, "list": [0, 1, 2]}, "metadata": {"name": "w1"}})),
        );
        check(
            doc.clone(),
            json!([{"op": "remove", "path": "/spec/list/0"}]),
            Ok(json!({"spec": {"size": 3, "list": [2]}, "metadata": {"name": "w1"}})),
        );
        check(doc.clone(), json!([{"op": "remove", "path": "/spec/nothing"}]), Err("failed"));
        // As Kubernetes (json-patch v4): replacing a missing member of an existing object
        // sets it; a missing parent or array element still fails.
        check(
            doc.clone(),
            json!([{"op": "replace", "path": "/spec/nothing", "value": 1}]),
            Ok(
                json!({"spec": {"size": 3, "list": [1, 2], "nothing": 1}, "metadata": {"name": "w1"}}),
            ),
        );
        check(
            doc.clone(),
            json!([{"op": "replace", "path": "/spec/nothing/deeper", "value": 1}]),
            Err("failed"),
        );
        check(
            doc.clone(),
            json!([{"op": "replace", "path": "/spec/list/2", "value": 1}]),
            Err("failed"),
        );
        check(
            doc.clone(),
            json!([{"op": "replace", "path": "/spec/size/x", "value": 1}]),
            Err("failed"),
        );
        check(
            doc.clone(),
            json!([{"op": "move", "from": "/spec/size", "path": "/size"}]),
            Ok(json!({"size": 3, "spec": {"list": [1, 2]}, "metadata": {"name": "w1"}})),
        );
        check(
            doc.clone(),
            json!([{"op": "copy", "from": "/metadata/name", "path": "/spec/n"}]),
            Ok(json!({"spec": {"size": 3, "list": [1, 2], "n": "w1"}, "metadata": {"name": "w1"}})),
        );
        check(doc.clone(), json!({"op": "add"}), Err("malformed"));
        check(doc.clone(), json!([{"op": "frobnicate", "path": "/a"}]), Err("malformed"));
        check(doc.clone(), json!([{"path": "/a"}]), Err("malformed"));
        check(doc.clone(), json!([{"op": "add", "path": "/x/y", "value": 1}]), Err("failed"));
        check(
            json!({"a/b": {"~c": 1}}),
            json!([{"op": "replace", "path": "/a~1b/~0c", "value": 2}]),
            Ok(json!({"a/b": {"~c": 2}})),
        );
    }

    #[test]
    fn test_null_on_missing_path_succeeds_like_kubernetes() {
        // What kube-runtime's finalizer helper sends.
        check(
            json!({"metadata": {"name": "w"}}),
            json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]}
            ]),
            Ok(json!({"metadata": {"name": "w", "finalizers": ["x/y"]}})),
        );
    }
}
