//! `karmada crds`: Karmada's kinds as CRDs (the API server serves them itself, see
//! `control_plane::apis`), and the tests that keep each kind's schema and type in agreement.

use karmada_api::kinds::KINDS;

#[derive(clap::Args, Debug)]
pub struct CrdsArgs {
    /// Only the kinds of this API group (e.g. `policy.karmada.io`).
    #[arg(long)]
    group: Option<String>,
    /// Write one file per CRD (`<group>_<plural>.yaml`) into this directory instead of printing.
    #[arg(long)]
    out_dir: Option<std::path::PathBuf>,
}

/// `karmada crds`: the CRDs of every Karmada kind, generated from `karmada-api`'s types.
pub fn print_crds(args: &CrdsArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    for kind in KINDS.iter().filter(|k| args.group.as_deref().is_none_or(|g| g == k.group)) {
        let yaml = serde_yaml::to_string(&karmada_api::schema::crd(kind))?;
        match &args.out_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let path = dir.join(format!("{}_{}.yaml", kind.group, kind.plural));
                std::fs::write(&path, format!("---\n{yaml}"))?;
            }
            None => match write!(stdout, "---\n{yaml}") {
                // `karmada crds | head` is fine.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                other => other?,
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The published schemas against the types: whatever the schema allows, the type reads;
    //! whatever the type writes, the schema accepts and pruning keeps; every value round-trips.
    //! Values are generated from the schemas themselves, so every field of every kind is covered.

    use karmada_api::{apps, autoscaling, config, networking, policy, work};
    use proptest::prelude::*;
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    use super::KINDS;

    /// A small deterministic generator driven by proptest's seed.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
        fn coin(&mut self) -> bool {
            self.next() & 1 == 1
        }
    }

    const WORDS: [&str; 6] = ["", "a", "member1", "apps/v1", "Deployment", "x-y.z"];

    fn free_form(g: &mut Gen) -> Value {
        match g.below(4) {
            0 => json!(g.below(100)),
            1 => json!(WORDS[g.below(6) as usize]),
            2 => json!({"k": [1, "two", {"three": true}]}),
            _ => json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        }
    }

    /// A value the schema allows.
    fn generate(schema: &Value, g: &mut Gen, depth: usize) -> Value {
        let flag = |k: &str| schema.get(k).and_then(Value::as_bool) == Some(true);
        if flag("x-kubernetes-int-or-string") {
            return json!(["1", "250m", "2Gi", "30%"][g.below(4) as usize]);
        }
        if flag("x-kubernetes-embedded-resource") {
            return json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}});
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array) {
            return options[g.below(options.len() as u64) as usize].clone();
        }
        let minimum = schema.get("minimum").and_then(Value::as_i64).unwrap_or(-1000);
        match schema.get("type").and_then(Value::as_str) {
            Some("object") => {
                let mut map = serde_json::Map::new();
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for (name, child) in props {
                        let wanted = required.contains(&name.as_str()) || (depth < 6 && g.coin());
                        let top = depth == 0
                            && matches!(name.as_str(), "apiVersion" | "kind" | "metadata");
                        if wanted && !top {
                            map.insert(name.clone(), generate(child, g, depth + 1));
                        }
                    }
                }
                if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                    for i in 0..g.below(3) {
                        map.insert(format!("key{i}"), generate(extra, g, depth + 1));
                    }
                } else if flag("x-kubernetes-preserve-unknown-fields") && map.is_empty() {
                    return free_form(g);
                }
                Value::Object(map)
            }
            Some("array") => {
                let n = if depth < 6 { g.below(3) } else { 0 };
                let items = schema.get("items").cloned().unwrap_or(json!({}));
                Value::Array((0..n).map(|_| generate(&items, g, depth + 1)).collect())
            }
            Some("string") => match schema.get("format").and_then(Value::as_str) {
                Some("date-time") => json!(format!(
                    "2026-0{}-1{}T0{}:30:00Z",
                    1 + g.below(9),
                    g.below(10),
                    g.below(10)
                )),
                Some("byte") => json!("aGVsbG8="),
                _ => json!(WORDS[g.below(6) as usize]),
            },
            Some("integer") => json!(minimum.max(-1000) + g.below(2000) as i64),
            Some("number") => json!(0.5 + g.below(100) as f64),
            Some("boolean") => json!(g.coin()),
            _ => free_form(g),
        }
    }

    /// Kubernetes' structural-schema rules: every node has a type (unless it preserves unknown
    /// fields or is int-or-string), no references, no defaults.
    fn structural_problems(schema: &Value, path: &str, problems: &mut Vec<String>) {
        let Some(map) = schema.as_object() else {
            problems.push(format!("{path}: not an object"));
            return;
        };
        for banned in ["$ref", "default", "allOf", "anyOf", "oneOf", "definitions", "$defs"] {
            if map.contains_key(banned) {
                problems.push(format!("{path}: has {banned}"));
            }
        }
        let exempt = ["x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string"]
            .iter()
            .any(|k| map.get(*k) == Some(&json!(true)));
        if !map.contains_key("type") && !exempt {
            problems.push(format!("{path}: no type"));
        }
        if let Some(props) = map.get("properties").and_then(Value::as_object) {
            for (name, child) in props {
                structural_problems(child, &format!("{path}.{name}"), problems);
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(child) = map.get(key).filter(|c| c.is_object()) {
                structural_problems(child, &format!("{path}[{key}]"), problems);
            }
        }
    }

    fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        schema: &Value,
        generated: Value,
    ) -> Result<(), String> {
        let typed: T = serde_json::from_value(generated.clone())
            .map_err(|e| format!("the type refuses what its schema allows: {e}\n{generated:#}"))?;
        let written = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
        let again: T = serde_json::from_value(written.clone())
            .map_err(|e| format!("the type cannot read what it wrote: {e}\n{written:#}"))?;
        if again != typed {
            return Err(format!("round trip changed the value:\n{typed:?}\n{again:?}"));
        }
        let causes = apiserver::crd::validate(schema, &written);
        if !causes.is_empty() {
            return Err(format!("the schema refuses what the type wrote: {causes:?}\n{written:#}"));
        }
        let mut pruned = written.clone();
        let dropped = apiserver::crd::prune(schema, &mut pruned);
        if !dropped.is_empty() {
            return Err(format!("pruning drops fields the type writes: {dropped:?}"));
        }
        Ok(())
    }

    fn check_kind(kind: &str, seed: u64) -> Result<(), String> {
        let def = KINDS.iter().find(|k| k.kind == kind).ok_or("unknown kind")?;
        let schema = (def.schema)();
        let mut g = Gen(seed | 1);
        let generated = generate(&schema, &mut g, 0);
        match kind {
            "Cluster" => check::<karmada_api::cluster::Cluster>(&schema, generated),
            "PropagationPolicy" => check::<policy::PropagationPolicy>(&schema, generated),
            "ClusterPropagationPolicy" => {
                check::<policy::ClusterPropagationPolicy>(&schema, generated)
            }
            "OverridePolicy" => check::<policy::OverridePolicy>(&schema, generated),
            "ClusterOverridePolicy" => check::<policy::ClusterOverridePolicy>(&schema, generated),
            "FederatedResourceQuota" => check::<policy::FederatedResourceQuota>(&schema, generated),
            "ClusterTaintPolicy" => check::<policy::ClusterTaintPolicy>(&schema, generated),
            "Work" => check::<work::Work>(&schema, generated),
            "ResourceBinding" => check::<work::ResourceBinding>(&schema, generated),
            "ClusterResourceBinding" => check::<work::ClusterResourceBinding>(&schema, generated),
            "ResourceInterpreterCustomization" => {
                check::<config::ResourceInterpreterCustomization>(&schema, generated)
            }
            "ResourceInterpreterWebhookConfiguration" => {
                check::<config::ResourceInterpreterWebhookConfiguration>(&schema, generated)
            }
            "FederatedHPA" => check::<autoscaling::FederatedHPA>(&schema, generated),
            "CronFederatedHPA" => check::<autoscaling::CronFederatedHPA>(&schema, generated),
            "MultiClusterService" => check::<networking::MultiClusterService>(&schema, generated),
            "MultiClusterIngress" => check::<networking::MultiClusterIngress>(&schema, generated),
            "ServiceExport" => check::<karmada_api::mcs::ServiceExport>(&schema, generated),
            "ServiceImport" => check::<karmada_api::mcs::ServiceImport>(&schema, generated),
            "WorkloadRebalancer" => check::<apps::WorkloadRebalancer>(&schema, generated),
            "Remedy" => check::<karmada_api::remedy::Remedy>(&schema, generated),
            "ResourceRegistry" => check::<apps::ResourceRegistry>(&schema, generated),
            other => Err(format!("no type for {other}")),
        }
    }

    #[test]
    fn every_kind_has_a_structural_schema_and_a_valid_crd() {
        for kind in KINDS {
            let schema = (kind.schema)();
            let mut problems = Vec::new();
            structural_problems(&schema, kind.kind, &mut problems);
            assert!(problems.is_empty(), "{problems:#?}");
            assert!(
                schema.pointer("/properties/spec").is_some()
                    || kind.kind == "ResourceInterpreterWebhookConfiguration"
                    || kind.kind == "ServiceExport"
            );
            let crd = karmada_api::schema::crd(kind);
            apiserver::crd::validate_crd(&crd).unwrap_or_else(|e| panic!("{}: {e:?}", kind.kind));
            let defs = apiserver::crd::defs_from_crd(&crd);
            assert_eq!(defs.len(), kind.versions.len());
            assert_eq!(defs[0].schema.as_deref(), Some(&schema));
            assert_eq!(defs[0].short_names, kind.short_names);
            // Every kind has a type the property test below exercises.
            check_kind(kind.kind, 7).unwrap_or_else(|e| panic!("{}: {e}", kind.kind));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn schema_and_type_agree_and_values_round_trip(seed in any::<u64>(), index in 0..KINDS.len()) {
            let kind = KINDS[index].kind;
            if let Err(e) = check_kind(kind, seed) {
                prop_assert!(false, "{kind}: {e}");
            }
        }
    }
}
