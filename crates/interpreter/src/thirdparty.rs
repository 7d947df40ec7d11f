//! Customizations bundled for well-known third-party kinds (Flink, Volcano, ...), written for
//! karmada-rs as ordinary `ResourceInterpreterCustomization` objects (the YAML files under
//! `crates/interpreter/thirdparty/`, one per kind). They rank below the user's customizations
//! and interpreter webhooks and above the built-in rules, as upstream's bundled ones do; a user
//! customization for the same kind and operation replaces them.

use std::sync::LazyLock;

use karmada_api::config::ResourceInterpreterCustomization;

use crate::Customizations;

/// Each bundled file: its path under `thirdparty/` and its text (listed by `build.rs`).
pub const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The bundled customizations, parsed (a file that does not parse is a build defect, caught
/// by this module's tests, and is left out rather than taking the process down).
pub fn list() -> Vec<ResourceInterpreterCustomization> {
    FILES.iter().filter_map(|(_, text)| serde_yaml::from_str(text).ok()).collect()
}

static BUNDLED: LazyLock<Customizations> = LazyLock::new(|| Customizations::new(&list()));

/// The bundled customizations' rules.
pub fn bundled() -> &'static Customizations {
    &BUNDLED
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Operation;

    #[test]
    fn every_bundled_customization_parses_compiles_and_targets_its_own_kind() {
        let mut targets = std::collections::BTreeSet::new();
        for (path, text) in FILES {
            let c: ResourceInterpreterCustomization =
                serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{path}: {e}"));
            let target = (c.spec.target.api_version.clone(), c.spec.target.kind.clone());
            assert!(path.ends_with(&format!("/{}.yaml", target.1)), "{path} targets {target:?}");
            assert!(targets.insert(target.clone()), "{path}: {target:?} bundled twice");
            let name = c.metadata.name.clone().unwrap_or_default();
            assert!(name.starts_with("thirdparty-"), "{path}: named {name:?}");
            let mut rules = 0;
            for op in Operation::CUSTOMIZABLE {
                if let Some(script) = c.spec.customizations.script(&op) {
                    let (chunk, function) = op.rule().unwrap();
                    crate::check_syntax(script, chunk)
                        .unwrap_or_else(|e| panic!("{path}: {chunk}: {e}"));
                    assert!(
                        script.contains(&format!("function {function}(")),
                        "{path}: {chunk} defines no {function}"
                    );
                    rules += 1;
                }
            }
            assert!(rules > 0, "{path} has no rules");
        }
        assert_eq!(list().len(), FILES.len());
    }
}
