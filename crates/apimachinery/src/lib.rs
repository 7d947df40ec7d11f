//! Kubernetes API machinery as pure functions over `serde_json::Value`: the `Status` error
//! model, label and field selectors, JSON patch, JSON merge patch and strategic merge patch,
//! RFC 3339 time and human durations, and the JSONPath subset that printer columns use.
//!
//! Both the API server and the controllers use it. It knows nothing of HTTP, storage or async
//! runtimes: every function here is deterministic given its inputs (the clock is passed in).

pub mod cron;
pub mod hpa;
pub mod jsonpath;
pub mod managed;
pub mod object;
pub mod patch;
pub mod quantity;
pub mod quota;
pub mod selector;
pub mod status;
pub mod time;
pub mod validation;

pub use status::{ApiError, Cause};

#[cfg(test)]
mod fuzz {
    //! Decoding and patch paths never panic, whatever the input.

    use proptest::prelude::*;
    use serde_json::Value;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z$/~0-9.:-]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("metadata".to_owned()),
                        Just("spec".to_owned()),
                        Just("containers".to_owned()),
                        Just("name".to_owned()),
                        Just("$patch".to_owned()),
                        Just("$retainKeys".to_owned()),
                        Just("$setElementOrder/containers".to_owned()),
                        Just("finalizers".to_owned()),
                        Just("op".to_owned()),
                        Just("path".to_owned()),
                        Just("value".to_owned()),
                        Just("from".to_owned()),
                        "[a-z]{1,3}",
                    ],
                    inner,
                    0..5,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn patches_never_panic(doc in json(), patch in json()) {
            let mut a = doc.clone();
            let _ = crate::patch::json::apply(&mut a, &patch);
            let mut b = doc.clone();
            crate::patch::merge::apply(&mut b, &patch);
            for kind in ["Deployment", "Pod", "Service", "ConfigMap", "Unknown"] {
                let mut c = doc.clone();
                let _ = crate::patch::strategic::apply(&mut c, &patch, kind);
            }
        }

        #[test]
        fn managed_fields_never_panic(current in json(), applied in json()) {
            let lists = |path: &[&str]| match path.last() {
                Some(&"containers") => crate::managed::ListKind::Map(vec!["name".into()]),
                Some(&"finalizers") => crate::managed::ListKind::Set,
                _ => crate::managed::ListKind::Atomic,
            };
            let mut entries = Vec::new();
            crate::managed::record_update(&mut entries, &current, &applied, "m", "v1", "t", None, &lists);
            let _ = crate::managed::apply(&current, &mut entries, &applied, "n", "v1", "t", None, false, &lists);
            let encoded = crate::managed::encode_entries(&entries);
            let _ = crate::managed::decode_entries(&serde_json::json!({"metadata": {"managedFields": encoded}}));
        }

        #[test]
        fn parsers_never_panic(input in "\\PC{0,40}") {
            let _ = crate::selector::LabelSelector::parse(&input);
            let _ = crate::selector::FieldSelector::parse(&input);
            let _ = crate::jsonpath::JsonPath::parse(&input);
            let _ = crate::time::parse_rfc3339(&input);
            let _ = crate::selector::validate_label_key(&input);
            let _ = crate::quantity::parse_milli(&input);
        }

        #[test]
        fn selector_objects_never_panic(value in json()) {
            let _ = crate::selector::LabelSelector::from_object(&value);
        }
    }
}
