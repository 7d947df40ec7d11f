//! Upgrades: a newer binary opens the data dir an older release wrote.

use std::path::Path;

use crate::harness::ApiServer;

/// Copies a committed data dir into a private temporary one, with the modes the API server
/// demands of keys and stores (git keeps neither).
fn private_copy(from: &Path) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else if entry.file_name() != "README.md" {
                std::fs::copy(entry.path(), &target).unwrap();
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(from, dir.path());
    dir
}

/// Storage format 1 — a redb data dir written by the release before the format was recorded
/// in the store (`tests/data/storage-format-1/README.md`) — opens with this binary: every
/// object is served as written (the Secret unsealed with the data dir's key), new writes land
/// beside them, and all of it survives a restart.
#[test]
fn a_data_dir_written_by_the_previous_release_opens_with_its_objects() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/storage-format-1");
    assert!(fixture.join("store.redb").exists(), "missing fixture {}", fixture.display());
    let mut s = ApiServer::start_in(private_copy(&fixture), "redb", &[]);
    let get = |s: &ApiServer, args: &[&str]| s.kubectl(args).ok().trim().to_owned();
    let check = |s: &ApiServer| {
        assert_eq!(
            get(
                s,
                &["-n", "legacy", "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"]
            ),
            "2"
        );
        assert_eq!(
            get(s, &["-n", "legacy", "get", "secret", "creds", "-o", "jsonpath={.data.password}"]),
            "czNjcmV0" // base64 of s3cret
        );
        assert_eq!(
            get(
                s,
                &["-n", "legacy", "get", "configmap", "settings", "-o", "jsonpath={.data.mode}"]
            ),
            "prod"
        );
        assert_eq!(
            get(s, &["-n", "legacy", "get", "propagationpolicy", "-o", "name"]),
            "propagationpolicy.policy.karmada.io/nginx-propagation"
        );
    };
    check(&s);
    s.kubectl(&["-n", "legacy", "create", "configmap", "after-upgrade", "--from-literal=a=b"]).ok();
    s.kubectl(&["-n", "legacy", "scale", "deployment", "web", "--replicas=3"]).ok();
    s.restart();
    let replicas = ["-n", "legacy", "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"];
    assert_eq!(get(&s, &replicas), "3");
    s.kubectl(&["-n", "legacy", "scale", "deployment", "web", "--replicas=2"]).ok();
    check(&s);
    assert_eq!(
        get(&s, &["-n", "legacy", "get", "configmap", "after-upgrade", "-o", "jsonpath={.data.a}"]),
        "b"
    );
}
