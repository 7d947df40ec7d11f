//! Built-in kinds as users meet them with the real kubectl: every imperative generator (they
//! send Kubernetes protobuf), cascading deletes, validation errors, and `kubectl explain` on the
//! oldest and newest kubectl — on the control plane here, and on a member in `member_kubectl`.

use std::path::Path;

use crate::harness::{ApiServer, Out};

/// A self-signed certificate and key for `kubectl create secret tls`.
pub fn tls_files(dir: &Path) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["demo.example.com".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path.to_str().expect("utf-8").to_owned(), key_path.to_str().expect("utf-8").to_owned())
}

/// Runs every `kubectl create ...` generator, `expose` and cascading deletes through `kubectl`
/// (a control plane or a member), checking what each created.
/// `rbac`: the server authorizes with RBAC (the control plane; simulated members allow every
/// authenticated user).
pub fn generators(kubectl: &dyn Fn(&[&str]) -> Out, dir: &Path, rbac: bool) {
    let (cert, key) = tls_files(dir);
    kubectl(&["create", "namespace", "demo"]).ok();
    let n = ["-n", "demo"];
    let created: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "--port=80"],
            "deployment.apps/web created",
        ),
        (
            vec![
                "create",
                "configmap",
                "settings",
                "--from-literal=mode=fast",
                "--from-literal=empty=",
            ],
            "configmap/settings created",
        ),
        (
            vec!["create", "secret", "generic", "creds", "--from-literal=password=s3cr3t"],
            "secret/creds created",
        ),
        (
            vec!["create", "secret", "tls", "cert", "--cert", &cert, "--key", &key],
            "secret/cert created",
        ),
        (
            vec![
                "create",
                "secret",
                "docker-registry",
                "pull",
                "--docker-server=registry.example.com",
                "--docker-username=u",
                "--docker-password=p",
            ],
            "secret/pull created",
        ),
        (vec!["create", "job", "once", "--image=busybox", "--", "true"], "job.batch/once created"),
        (
            vec!["create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *"],
            "cronjob.batch/tick created",
        ),
        (vec!["create", "serviceaccount", "robot"], "serviceaccount/robot created"),
        (
            vec!["create", "role", "reader", "--verb=get,list", "--resource=pods"],
            "role.rbac.authorization.k8s.io/reader created",
        ),
        (
            vec!["create", "rolebinding", "reader", "--role=reader", "--serviceaccount=demo:robot"],
            "rolebinding.rbac.authorization.k8s.io/reader created",
        ),
        (vec!["create", "service", "clusterip", "api", "--tcp=80:8080"], "service/api created"),
        (vec!["create", "service", "nodeport", "edge", "--tcp=443:8443"], "service/edge created"),
        (
            // Counts only: a `requests.cpu` quota would refuse the pods of `web` (they request
            // nothing), as a real cluster's quota admission does.
            vec!["create", "quota", "limits", "--hard=pods=20,services=10"],
            "resourcequota/limits created",
        ),
        (
            vec!["create", "poddisruptionbudget", "web", "--selector=app=web", "--min-available=1"],
            "poddisruptionbudget.policy/web created",
        ),
        (
            vec!["create", "ingress", "web", "--rule=web.example.com/=web:80"],
            "ingress.networking.k8s.io/web created",
        ),
        (vec!["expose", "deployment", "web", "--port=80", "--name=web"], "service/web exposed"),
    ];
    for (args, want) in &created {
        let mut all = n.to_vec();
        all.extend(args);
        let out = kubectl(&all);
        assert!(out.ok().contains(want), "kubectl {}: {}", args.join(" "), out.stdout);
    }
    for (args, want) in [
        (
            vec!["create", "clusterrole", "node-reader", "--verb=get", "--resource=nodes"],
            "clusterrole.rbac.authorization.k8s.io/node-reader created",
        ),
        (
            vec![
                "create",
                "clusterrolebinding",
                "node-reader",
                "--clusterrole=node-reader",
                "--user=alice",
            ],
            "clusterrolebinding.rbac.authorization.k8s.io/node-reader created",
        ),
        (
            vec!["create", "priorityclass", "important", "--value=1000", "--description=first"],
            "priorityclass.scheduling.k8s.io/important created",
        ),
    ] {
        let out = kubectl(&args);
        assert!(out.ok().contains(want), "kubectl {}: {}", args.join(" "), out.stdout);
    }
    // What they created is what kubectl meant.
    let get = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(n);
        kubectl(&all).ok().to_owned()
    };
    assert_eq!(
        get(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}"
        ]),
        "2 nginx:1.27 80"
    );
    assert_eq!(get(&["get", "cm", "settings", "-o", "jsonpath={.data.mode}"]), "fast");
    assert_eq!(get(&["get", "secret", "creds", "-o", "jsonpath={.data.password}"]), "czNjcjN0");
    assert_eq!(get(&["get", "secret", "cert", "-o", "jsonpath={.type}"]), "kubernetes.io/tls");
    assert_eq!(
        get(&["get", "secret", "pull", "-o", "jsonpath={.type}"]),
        "kubernetes.io/dockerconfigjson"
    );
    assert_eq!(
        get(&["get", "job", "once", "-o", "jsonpath={.spec.template.spec.restartPolicy}"]),
        "Never"
    );
    assert_eq!(get(&["get", "cronjob", "tick", "-o", "jsonpath={.spec.schedule}"]), "*/5 * * * *");
    assert_eq!(
        get(&[
            "get",
            "svc",
            "edge",
            "-o",
            "jsonpath={.spec.type} {.spec.ports[0].port} {.spec.ports[0].targetPort}"
        ]),
        "NodePort 443 8443"
    );
    assert_eq!(get(&["get", "svc", "web", "-o", "jsonpath={.spec.selector.app}"]), "web");
    assert_eq!(get(&["get", "pdb", "web", "-o", "jsonpath={.spec.minAvailable}"]), "1");
    assert_eq!(
        get(&["get", "ingress", "web", "-o", "jsonpath={.spec.rules[0].host}"]),
        "web.example.com"
    );
    assert_eq!(get(&["get", "quota", "limits", "-o", "jsonpath={.spec.hard.pods}"]), "20");
    assert_eq!(kubectl(&["get", "pc", "important", "-o", "jsonpath={.value}"]).ok(), "1000");
    // A token for the service account, and a permission check through it (protobuf reviews).
    let mut token_args = vec!["create", "token", "robot", "--duration=10m"];
    token_args.extend(n);
    let token = kubectl(&token_args);
    assert!(token.ok().trim().starts_with("eyJ"), "{}", token.stdout);
    let can = kubectl(&[
        "auth",
        "can-i",
        "list",
        "pods",
        "-n",
        "demo",
        "--as=system:serviceaccount:demo:robot",
    ]);
    assert_eq!(can.ok().trim(), "yes");
    if rbac {
        let cannot = kubectl(&[
            "auth",
            "can-i",
            "delete",
            "pods",
            "-n",
            "demo",
            "--as=system:serviceaccount:demo:robot",
        ]);
        assert_eq!(cannot.stdout.trim(), "no");
    }
    // Cascading deletes with each propagation policy.
    for (kind, name, cascade) in [
        ("job", "once", "orphan"),
        ("cronjob", "tick", "foreground"),
        ("cm", "settings", "background"),
    ] {
        let cascade_flag = format!("--cascade={cascade}");
        let mut args =
            vec!["delete", kind, name, cascade_flag.as_str(), "--wait=true", "--timeout=30s"];
        args.extend(n);
        let out = kubectl(&args);
        assert!(out.ok().contains("deleted"), "delete {kind} --cascade={cascade}: {}", out.stdout);
    }
}

#[test]
fn imperative_generators_work_on_the_control_plane() {
    let s = ApiServer::start("memory");
    generators(&|args| s.kubectl(args), s.dir.path(), true);
    // `kubectl certificate approve` writes the approval subresource (protobuf, typed client);
    // the control plane then signs the request.
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, "alice");
    let request = params.serialize_request(&key).expect("csr").pem().expect("pem");
    use base64::Engine as _;
    let csr = format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: alice\nspec:\n  request: {}\n  signerName: kubernetes.io/kube-apiserver-client\n  usages: [client auth]\n",
        base64::engine::general_purpose::STANDARD.encode(request)
    );
    let file = s.file("csr.yaml", &csr);
    s.kubectl(&["create", "-f", &file]).ok();
    let approved = s.kubectl(&["certificate", "approve", "alice"]);
    assert!(approved.ok().contains("approved"), "{}", approved.stdout);
    crate::harness::eventually(
        std::time::Duration::from_secs(10),
        "the certificate is issued",
        || {
            let cert = s.kubectl(&["get", "csr", "alice", "-o", "jsonpath={.status.certificate}"]);
            (!cert.stdout.is_empty()).then_some(())
        },
    );
    let conditions =
        s.kubectl(&["get", "csr", "alice", "-o", "jsonpath={.status.conditions[0].type}"]);
    assert_eq!(conditions.ok(), "Approved");
}

#[test]
fn built_in_kinds_are_validated() {
    let s = ApiServer::start("memory");
    let deployment = |replicas: &str, extra: &str, labels: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n{extra}  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: {labels}}}\n    spec:\n      containers:\n      - {{name: nginx, image: nginx}}\n"
        )
    };
    let apply = |name: &str, body: String, more: &[&str]| {
        let file = s.file(name, &body);
        let mut args = vec!["apply", "-f", file.as_str()];
        args.extend(more);
        s.kubectl(&args)
    };
    let err = apply("type.yaml", deployment("\"three\"", "", "web"), &[]);
    assert!(
        err.fails().contains("The Deployment \"web\" is invalid: spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer"),
        "{}",
        err.stderr
    );
    let err = apply("unknown.yaml", deployment("1", "  replica: 3\n", "web"), &[]);
    assert!(
        err.fails().contains("strict decoding error: unknown field \"spec.replica\""),
        "{}",
        err.stderr
    );
    let err = apply("selector.yaml", deployment("1", "", "api"), &[]);
    assert!(err.fails().contains("`selector` does not match template `labels`"), "{}", err.stderr);
    // Without kubectl's validation the unknown field is dropped, with a warning.
    let out = apply("warn.yaml", deployment("1", "  replica: 3\n", "web"), &["--validate=false"]);
    assert!(out.ok().contains("deployment.apps/web created"), "{}", out.stdout);
    let spec = s.kubectl(&["get", "deploy", "web", "-o", "jsonpath={.spec}"]);
    assert!(!spec.ok().contains("replica\""), "{}", spec.stdout);
    // With --validate=warn kubectl prints the server's warning.
    let out = apply("warn2.yaml", deployment("1", "  replica: 4\n", "web"), &["--validate=warn"]);
    assert!(out.ok().contains("deployment.apps/web"), "{}", out.stdout);
    assert!(out.stderr.contains("Warning: unknown field \"spec.replica\""), "{}", out.stderr);
    let out = s.kubectl(&["create", "configmap", "a b:c"]);
    assert!(out.fails().contains("metadata.name: Invalid value: \"a b:c\""), "{}", out.stderr);
    let out = s.kubectl(&["create", "deployment", "neg", "--image=nginx", "--replicas=-1"]);
    assert!(
        out.fails()
            .contains("spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        "{}",
        out.stderr
    );
    let svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: big\nspec:\n  ports:\n  - {name: a, port: 70000}\n";
    let out = apply("svc.yaml", svc.to_owned(), &[]);
    assert!(
        out.fails().contains(
            "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"
        ),
        "{}",
        out.stderr
    );
    // RBAC names may hold colons.
    s.kubectl(&["create", "clusterrole", "system:demo:reader", "--verb=get", "--resource=pods"])
        .ok();
}

#[test]
fn kubectl_explain_works_for_built_in_kinds_on_old_and_new_kubectl() {
    let s = ApiServer::start("memory");
    for version in ["1.27", "1.33"] {
        let out =
            s.kubectl_version(version, &["explain", "deployment.spec.template.spec.containers"]);
        let text = out.ok();
        for want in [
            "KIND:       Deployment",
            "FIELD: containers <[]Container>",
            "image\t<string>",
            "livenessProbe\t<Probe>",
        ] {
            assert!(text.contains(want), "kubectl {version} explain lacks {want:?}:\n{text}");
        }
        let out = s.kubectl_version(version, &["explain", "pods.spec.volumes.configMap.name"]);
        assert!(out.ok().contains("FIELD: name <string>"), "kubectl {version}: {}", out.stdout);
        let out = s.kubectl_version(version, &["explain", "svc.spec.ports.targetPort"]);
        assert!(out.ok().contains("<IntOrString>"), "kubectl {version}: {}", out.stdout);
    }
}
