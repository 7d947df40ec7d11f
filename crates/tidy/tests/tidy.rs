//! Invariants of the workspace that no compiler checks.
//!
//! A *pure* crate (marked `[package.metadata.karmada] pure = true`: API types, matching and
//! scheduling logic, the store contract) must never depend, directly or transitively, on an async
//! runtime, an HTTP stack, a Kubernetes client or a storage engine. Those belong to the IO crates
//! that sit on top.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const FORBIDDEN_IN_PURE: &[&str] =
    &["tokio", "hyper", "kube-client", "kube", "redb", "etcd-client", "reqwest", "axum"];

/// Crates that must stay pure. Listed here too so that removing the marker is caught.
const MUST_BE_PURE: &[&str] =
    &["store", "apimachinery", "kube-protobuf", "karmada-api", "scheduler", "propagation"];

fn metadata() -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(root)
        .output()
        .expect("run cargo metadata");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("cargo metadata json")
}

/// The normal (non-dev, non-build) dependency closure of `root`, by package name.
fn normal_closure(meta: &Value, root_id: &str) -> BTreeSet<String> {
    closure(meta, root_id, false)
}

/// Everything that takes part in building `root` (normal and build dependencies, and theirs).
fn build_closure(meta: &Value, root_id: &str) -> BTreeSet<String> {
    closure(meta, root_id, true)
}

fn closure(meta: &Value, root_id: &str, with_build: bool) -> BTreeSet<String> {
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().expect("id"), p["name"].as_str().expect("name")))
        .collect();
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .map(|n| (n["id"].as_str().expect("id"), n))
        .collect();
    let mut seen = BTreeSet::new();
    let mut stack = vec![root_id];
    let mut out = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null() || (with_build && k["kind"] == "build"));
            if normal {
                let dep_id = dep["pkg"].as_str().expect("pkg");
                out.insert(names[dep_id].to_owned());
                stack.push(dep_id);
            }
        }
    }
    out
}

#[test]
fn pure_crates_do_not_depend_on_io() {
    let meta = metadata();
    let members: Vec<&Value> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| p["source"].is_null())
        .collect();
    let pure: Vec<&Value> = members
        .iter()
        .copied()
        .filter(|p| p["metadata"]["karmada"]["pure"].as_bool() == Some(true))
        .collect();
    let pure_names: BTreeSet<&str> =
        pure.iter().map(|p| p["name"].as_str().expect("name")).collect();
    for name in MUST_BE_PURE {
        assert!(pure_names.contains(name), "crate {name} lost its `pure = true` marker");
    }
    let mut violations = Vec::new();
    for package in pure {
        let name = package["name"].as_str().expect("name");
        let closure = normal_closure(&meta, package["id"].as_str().expect("id"));
        for forbidden in FORBIDDEN_IN_PURE {
            if closure.contains(*forbidden) {
                violations.push(format!("pure crate `{name}` depends on `{forbidden}`"));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// Building the `karmada` binary (and so running `karmada up` or the tests) needs cargo alone:
/// nothing in its build runs `protoc` (etcd's gRPC code is generated once and committed).
#[test]
fn building_karmada_needs_no_protoc() {
    let meta = metadata();
    let karmada = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "karmada" && p["source"].is_null())
        .expect("the karmada package");
    let closure = build_closure(&meta, karmada["id"].as_str().expect("id"));
    let needs_protoc: Vec<&str> =
        ["prost-build", "tonic-build", "tonic-prost-build", "protobuf-src", "protoc-bin-vendored"]
            .into_iter()
            .filter(|c| closure.contains(*c))
            .collect();
    assert!(
        needs_protoc.is_empty(),
        "the karmada binary's build runs protoc through {needs_protoc:?}"
    );
    assert!(closure.contains("tonic"), "the closure is computed (etcd's client is in it)");
}

#[test]
fn every_crate_uses_workspace_lints_and_has_a_crate_doc() {
    let meta = metadata();
    let mut problems = Vec::new();
    for package in meta["packages"].as_array().expect("packages") {
        if !package["source"].is_null() {
            continue;
        }
        let manifest = PathBuf::from(package["manifest_path"].as_str().expect("manifest"));
        let text = std::fs::read_to_string(&manifest).expect("read manifest");
        let name = package["name"].as_str().expect("name");
        if !text.contains("[lints]\nworkspace = true") {
            problems.push(format!("{name}: add `[lints] workspace = true`"));
        }
        for target in package["targets"].as_array().expect("targets") {
            let kinds = target["kind"].as_array().expect("kind");
            if kinds.iter().any(|k| k == "lib") {
                let src = target["src_path"].as_str().expect("src_path");
                let code = std::fs::read_to_string(src).expect("read lib");
                if !code.trim_start().starts_with("//!") {
                    problems.push(format!("{name}: lib.rs must open with a `//!` paragraph"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A newcomer finds how to run it and how to test it first.
#[test]
fn the_readme_leads_with_the_run_and_test_commands() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let head: String = readme.lines().take(40).collect::<Vec<_>>().join("\n");
    for command in ["cargo run --release -p karmada -- up", "scripts/test"] {
        assert!(head.contains(command), "README.md's first 40 lines lack `{command}`");
    }
    // CI runs exactly the README's test command.
    let ci = std::fs::read_to_string(repo().join(".ci/run")).expect(".ci/run");
    let runs = |l: &str| {
        let l = l.trim();
        l.strip_prefix("exec ").unwrap_or(l) == "scripts/test"
    };
    assert!(ci.lines().any(runs), ".ci/run must run scripts/test");
}

/// Every relative link in the README and the docs points at a file that exists.
#[test]
fn the_readme_and_docs_links_resolve() {
    let mut pages = vec![repo().join("README.md"), repo().join("ARCHITECTURE.md")];
    for entry in std::fs::read_dir(repo().join("docs")).expect("docs/") {
        let path = entry.expect("entry").path();
        // Pages, not the images they show.
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let mut broken = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(&page).expect("page");
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = rest[..end].split('#').next().unwrap_or_default();
            if !target.is_empty() && !target.contains("://") {
                let path = page.parent().expect("dir").join(target);
                if !path.exists() {
                    broken.push(format!("{}: {target}", page.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}
