//! The transcoder against the real thing: protobuf bodies captured from client-go decode to the
//! JSON Go marshals for the same objects, and our own encoding reads back the same.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::{Value, json};

fn golden() -> Vec<(String, Vec<u8>, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/golden");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("pb") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let pb = std::fs::read(&path).unwrap();
        let js: Value =
            serde_json::from_slice(&std::fs::read(path.with_extension("json")).unwrap()).unwrap();
        out.push((name, pb, js));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 25, "golden files missing from {}", dir.display());
    out
}

/// Go writes a nil slice or map without `omitempty` as `null`; the transcoder leaves such
/// fields out (the same object to every reader, and no nulls stored).
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

fn without_type_meta(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

#[test]
fn client_go_bodies_decode_to_go_json() {
    for (name, pb, js) in golden() {
        let decoded = kube_protobuf::decode(&pb).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(decoded.unknown_fields.is_empty(), "{name}: {:?}", decoded.unknown_fields);
        assert!(decoded.object["kind"].is_string(), "{name}");
        let got = without_type_meta(decoded.object);
        let js = without_nulls(js);
        assert_eq!(got, js, "{name}:\n got  {got}\n want {js}");
    }
}

#[test]
fn our_encoding_reads_back_the_same() {
    for (name, pb, _) in golden() {
        let object = kube_protobuf::decode(&pb).unwrap().object;
        if name == "deploymentlist" {
            continue;
        }
        let encoded = kube_protobuf::encode(&object).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = kube_protobuf::decode(&encoded).unwrap().object;
        assert_eq!(again, object, "{name}");
    }
}

#[test]
fn lists_encode_with_their_items() {
    let items = vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "b"}, "spec": {"replicas": 2}}),
    ];
    let bytes = kube_protobuf::encode_list(
        "apps/v1",
        "Deployment",
        &json!({"resourceVersion": "10", "continue": "abc"}),
        items,
    )
    .unwrap();
    let list = kube_protobuf::decode(&bytes).unwrap().object;
    assert_eq!(list["kind"], "DeploymentList");
    assert_eq!(list["metadata"], json!({"resourceVersion": "10", "continue": "abc"}));
    assert_eq!(list["items"][1]["spec"]["replicas"], 2);
    // The same as client-go's own list encoding reads.
    let golden = golden().into_iter().find(|g| g.0 == "deploymentlist").unwrap();
    let theirs = kube_protobuf::decode(&golden.1).unwrap().object;
    assert_eq!(theirs["metadata"], list["metadata"]);
    assert_eq!(theirs["items"].as_array().unwrap().len(), 2);
}

#[test]
fn watch_frames_round_trip() {
    let object = kube_protobuf::encode(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "5"}, "data": {"k": "v"}})).unwrap();
    let mut stream = kube_protobuf::watch_frame("ADDED", &object);
    stream.extend(kube_protobuf::watch_frame("DELETED", &object));
    stream.extend_from_slice(&[0, 0, 0]);
    let (events, rest) = kube_protobuf::read_watch_frames(&stream).unwrap();
    assert_eq!(rest, &[0, 0, 0]);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].0, "ADDED");
    assert_eq!(kube_protobuf::decode(&events[1].1).unwrap().object["data"]["k"], "v");
}

#[test]
fn type_mismatches_fail_strictly_and_are_left_out_leniently() {
    let bad = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": "three", "paused": true}});
    let e = kube_protobuf::encode(&bad).unwrap_err();
    assert_eq!(e.to_string(), "spec.replicas: expected an integer, found a string");
    let lenient = kube_protobuf::encode_lenient(&bad).unwrap();
    let back = kube_protobuf::decode(&lenient).unwrap().object;
    assert_eq!(back["spec"], json!({"paused": true}));
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut tm = Vec::new();
    kube_protobuf::wire::put_bytes(&mut tm, 1, api_version.as_bytes());
    kube_protobuf::wire::put_bytes(&mut tm, 2, kind.as_bytes());
    let mut out = b"k8s\0".to_vec();
    kube_protobuf::wire::put_bytes(&mut out, 1, &tm);
    kube_protobuf::wire::put_bytes(&mut out, 2, raw);
    out
}

#[test]
fn bad_input_is_an_error_naming_the_problem() {
    use kube_protobuf::Error;
    let cm = kube_protobuf::encode(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})).unwrap();
    let check = |body: &[u8]| kube_protobuf::decode(body).map(|d| d.object).unwrap_err();
    assert_eq!(check(b"{\"kind\":\"ConfigMap\"}"), Error::NotProtobuf);
    assert!(matches!(check(b"k8s\0"), Error::Envelope(_)));
    for cut in 5..cm.len() - 1 {
        // Every truncation is an error, never a panic (some cut inside a string end cleanly).
        let _ = kube_protobuf::decode(&cm[..cut]);
    }
    assert!(matches!(check(&cm[..cm.len() - 3]), Error::Envelope(_) | Error::Malformed { .. }));
    assert_eq!(check(&envelope("v1", "", b"")), Error::MissingKind);
    assert_eq!(
        check(&envelope("v1", "Nope", b"")).to_string(),
        "no protobuf encoding is known for kind \"Nope\" in apiVersion \"v1\""
    );
    // A wire type that does not fit the field, deep inside.
    let mut meta = Vec::new();
    kube_protobuf::wire::put_varint_field(&mut meta, 1, 5); // name as a varint
    let mut raw = Vec::new();
    kube_protobuf::wire::put_bytes(&mut raw, 1, &meta);
    let e = check(&envelope("v1", "ConfigMap", &raw));
    assert_eq!(
        e.to_string(),
        "metadata.name: expected length-delimited bytes for a String field, found varint"
    );
    // Unknown fields are dropped and reported.
    let mut raw = Vec::new();
    kube_protobuf::wire::put_varint_field(&mut raw, 99, 1);
    let decoded = kube_protobuf::decode(&envelope("v1", "ConfigMap", &raw)).unwrap();
    assert_eq!(decoded.unknown_fields, vec!["(field 99 of k8s.io.api.core.v1.ConfigMap)"]);
}

#[test]
fn deep_nesting_is_refused_quickly() {
    // A CRD schema nested 100,000 levels through `not`.
    let props_not = 28u32;
    let mut inner: Vec<u8> = Vec::new();
    for _ in 0..100_000 {
        let mut outer = Vec::with_capacity(inner.len() + 8);
        kube_protobuf::wire::put_bytes(&mut outer, props_not, &inner);
        inner = outer;
        if inner.len() > 4_000_000 {
            break;
        }
    }
    let mut validation = Vec::new();
    kube_protobuf::wire::put_bytes(&mut validation, 1, &inner);
    let mut version = Vec::new();
    kube_protobuf::wire::put_bytes(&mut version, 1, b"v1");
    kube_protobuf::wire::put_bytes(&mut version, 4, &validation);
    let mut spec = Vec::new();
    kube_protobuf::wire::put_bytes(&mut spec, 7, &version);
    let mut crd = Vec::new();
    kube_protobuf::wire::put_bytes(&mut crd, 2, &spec);
    let body = envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd);
    match kube_protobuf::decode(&body) {
        Err(kube_protobuf::Error::TooDeep { limit, .. }) => {
            assert_eq!(limit, kube_protobuf::MAX_DEPTH)
        }
        other => panic!("{other:?}"),
    }
}

mod fuzz {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn decoding_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..256), kind in 0usize..6) {
            let kinds = [("v1", "ConfigMap"), ("apps/v1", "Deployment"), ("v1", "Pod"),
                ("apiextensions.k8s.io/v1", "CustomResourceDefinition"), ("v1", "DeleteOptions"), ("v1", "Secret")];
            let (av, k) = kinds[kind];
            let body = super::envelope(av, k, &tail);
            if let Ok(decoded) = kube_protobuf::decode(&body) {
                // Whatever decodes, encodes and reads back the same.
                let again = kube_protobuf::encode(&decoded.object).unwrap();
                prop_assert_eq!(kube_protobuf::decode(&again).unwrap().object, decoded.object);
            }
            let _ = kube_protobuf::decode(&tail);
        }
    }
}
