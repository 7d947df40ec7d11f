//! How objects are stored: JSON with `metadata` first and without `resourceVersion` (the store
//! revision *is* the resourceVersion). Serving an object splices `"resourceVersion":"N"` into
//! the stored bytes, so lists and watch events never decode and re-encode objects.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

const PREFIX: &[u8] = b"{\"metadata\":{";

/// Encodes an object for the store.
pub fn encode(object: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let Value::Object(map) = object else {
        return serde_json::to_vec(object).unwrap_or_default();
    };
    out.extend_from_slice(b"{\"metadata\":");
    let mut meta =
        map.get("metadata").cloned().unwrap_or_else(|| Value::Object(Default::default()));
    if let Value::Object(m) = &mut meta {
        m.remove("resourceVersion");
    }
    // Writing to a Vec cannot fail, and Value always serializes.
    let _ = serde_json::to_writer(&mut out, &meta);
    for (key, value) in map {
        if key == "metadata" {
            continue;
        }
        out.push(b',');
        let _ = serde_json::to_writer(&mut out, key);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, value);
    }
    out.push(b'}');
    out
}

/// Appends the stored object with `resourceVersion` set to `rv` to `out`.
pub fn splice_into(out: &mut BytesMut, stored: &[u8], rv: u64) {
    if stored.starts_with(PREFIX) {
        let rest = &stored[PREFIX.len()..];
        out.reserve(stored.len() + 40);
        out.put_slice(PREFIX);
        out.put_slice(b"\"resourceVersion\":\"");
        out.put_slice(rv.to_string().as_bytes());
        out.put_u8(b'"');
        if rest.first() != Some(&b'}') {
            out.put_u8(b',');
        }
        out.put_slice(rest);
    } else {
        // Not written by us (or corrupt): take the slow path.
        let value = decode(stored, rv);
        let _ = serde_json::to_writer((&mut *out).writer(), &value);
    }
}

pub fn splice(stored: &[u8], rv: u64) -> Bytes {
    let mut out = BytesMut::new();
    splice_into(&mut out, stored, rv);
    out.freeze()
}

/// Decodes a stored object and sets its `resourceVersion`.
pub fn decode(stored: &[u8], rv: u64) -> Value {
    let mut value: Value =
        serde_json::from_slice(stored).unwrap_or_else(|_| Value::Object(Default::default()));
    apimachinery::object::set_meta(&mut value, "resourceVersion", Value::String(rv.to_string()));
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splice_equals_decode() {
        let objects = [
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "x", "resourceVersion": "99"}, "data": {"k": "v"}}),
            json!({"kind": "X", "metadata": {}}),
            json!({"kind": "X"}),
        ];
        for object in objects {
            let stored = encode(&object);
            assert!(stored.starts_with(PREFIX));
            let spliced: Value = serde_json::from_slice(&splice(&stored, 42)).unwrap();
            assert_eq!(spliced, decode(&stored, 42));
            assert_eq!(spliced["metadata"]["resourceVersion"], "42");
            let mut expected = object.clone();
            apimachinery::object::set_meta(&mut expected, "resourceVersion", json!("42"));
            assert_eq!(spliced, expected);
        }
    }
}
