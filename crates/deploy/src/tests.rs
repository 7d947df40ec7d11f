#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::pki::{Pki, Request};

fn kinds(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap())
        })
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} in {:?}", kinds(objects)))
}

fn args(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn ha() -> Options {
    Options {
        store: Store::Etcd { replicas: 3, image: DEFAULT_ETCD_IMAGE.into() },
        apiserver_replicas: 2,
        controller_manager_replicas: 2,
        scheduler_replicas: 2,
        ..Options::default()
    }
}

#[test]
fn one_replica_on_redb_keeps_its_data_on_a_claim_and_recreates() {
    let objects = manifests(&Options::default()).unwrap();
    assert_eq!(
        kinds(&objects),
        [
            "Namespace/karmada-system",
            "ServiceAccount/karmada-init-secrets",
            "Role/karmada-init-secrets",
            "RoleBinding/karmada-init-secrets",
            "Job/karmada-init-secrets",
            "PersistentVolumeClaim/karmada-apiserver-data",
            "Service/karmada-apiserver",
            "Deployment/karmada-apiserver",
            "Deployment/karmada-controller-manager",
            "Deployment/karmada-scheduler",
        ]
    );
    for object in &objects {
        assert_eq!(object["metadata"]["labels"][BOOTSTRAPPING_LABEL], BOOTSTRAPPING_VALUE);
    }
    let apiserver = find(&objects, "Deployment", APISERVER);
    assert_eq!(apiserver["spec"]["strategy"]["type"], "Recreate");
    let a = args(apiserver);
    assert!(a.contains(&"--store=redb".to_owned()), "{a:?}");
    assert!(a.contains(&"--pki-dir=/etc/karmada/pki".to_owned()), "{a:?}");
    let sans = a.iter().find_map(|a| a.strip_prefix("--tls-san=")).unwrap();
    assert!(sans.split(',').any(|s| s == "karmada-apiserver.karmada-system.svc.cluster.local"));
    let volumes = &apiserver["spec"]["template"]["spec"]["volumes"];
    assert!(
        volumes
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == APISERVER_DATA)
    );
    let service = find(&objects, "Service", APISERVER);
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(service["spec"]["ports"][0]["nodePort"], 32443);
    // Non-root, read-only, no service account token where none is needed.
    let pod = &apiserver["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], RUN_AS);
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"], true);
    // The Job's pod may create the Secrets, nothing else.
    let role = find(&objects, "Role", INIT_SECRETS);
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create"]}])
    );
    let cm = args(find(&objects, "Deployment", CONTROLLER_MANAGER));
    assert!(cm.contains(&"--kubeconfig=/etc/karmada/config/karmada.config".to_owned()));
    assert!(cm.contains(&"--health-probe-bind-address=0.0.0.0:10357".to_owned()));
}

#[test]
fn ha_runs_a_tls_etcd_of_three_and_budgets_every_replicated_component() {
    let objects = manifests(&ha()).unwrap();
    let etcd = find(&objects, "StatefulSet", ETCD);
    assert_eq!(etcd["spec"]["replicas"], 3);
    assert_eq!(etcd["spec"]["volumeClaimTemplates"][0]["metadata"]["name"], "data");
    let command: Vec<&str> = etcd["spec"]["template"]["spec"]["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let cluster = command.iter().find_map(|c| c.strip_prefix("--initial-cluster=")).unwrap();
    assert_eq!(cluster.split(',').count(), 3);
    assert!(
        cluster.starts_with("etcd-0=https://etcd-0.etcd.karmada-system.svc.cluster.local:2380")
    );
    for flag in ["--client-cert-auth=true", "--peer-client-cert-auth=true"] {
        assert!(command.contains(&flag), "{command:?}");
    }
    let a = args(find(&objects, "Deployment", APISERVER));
    assert!(
        a.contains(
            &"--store=etcd:https://etcd-client.karmada-system.svc.cluster.local:2379".to_owned()
        ),
        "{a:?}"
    );
    assert!(a.contains(&"--etcd-certfile=/etc/karmada/pki/etcd-client.crt".to_owned()));
    assert!(find(&objects, "Deployment", APISERVER)["spec"].get("strategy").is_none());
    for app in [APISERVER, CONTROLLER_MANAGER, SCHEDULER] {
        assert_eq!(find(&objects, "PodDisruptionBudget", app)["spec"]["minAvailable"], 1);
        assert_eq!(find(&objects, "Deployment", app)["spec"]["replicas"], 2);
    }
    assert_eq!(find(&objects, "PodDisruptionBudget", ETCD)["spec"]["maxUnavailable"], 1);
    let job = args(find(&objects, "Job", INIT_SECRETS));
    assert!(
        job.iter().any(|a| a.starts_with("--etcd-sans=*.etcd.karmada-system.svc.cluster.local,")),
        "{job:?}"
    );
    // No claim of the API server's own: its data is in etcd.
    assert!(!kinds(&objects).contains(&format!("PersistentVolumeClaim/{APISERVER_DATA}")));
}

#[test]
fn options_that_cannot_work_are_refused_naming_the_flag() {
    let redb_two = Options { apiserver_replicas: 2, ..Options::default() };
    assert!(manifests(&redb_two).unwrap_err().0.contains("--store etcd"));
    let even =
        Options { store: Store::Etcd { replicas: 2, image: "e".into() }, ..Options::default() };
    assert!(manifests(&even).unwrap_err().0.contains("--etcd-replicas must be odd"));
    let none = Options { scheduler_replicas: 0, ..Options::default() };
    assert!(manifests(&none).unwrap_err().0.contains("--karmada-scheduler-replicas"));
    let external = Options {
        store: Store::ExternalEtcd { servers: vec![], prefix: String::new() },
        ..Options::default()
    };
    assert!(manifests(&external).unwrap_err().0.contains("--external-etcd-servers"));
}

#[test]
fn an_external_etcd_is_reached_with_its_own_certificates() {
    let o = Options {
        store: Store::ExternalEtcd {
            servers: vec!["https://10.0.0.1:2379".into(), "https://10.0.0.2:2379".into()],
            prefix: "/tenant-a".into(),
        },
        storage: Storage::EmptyDir,
        ..Options::default()
    };
    let objects = manifests(&o).unwrap();
    assert!(!kinds(&objects).iter().any(|k| k.starts_with("StatefulSet/")));
    let a = args(find(&objects, "Deployment", APISERVER));
    assert!(a.contains(&"--store=etcd:https://10.0.0.1:2379,https://10.0.0.2:2379".to_owned()));
    assert!(a.contains(&"--etcd-prefix=/tenant-a".to_owned()));
    assert!(a.contains(&"--etcd-cafile=/etc/karmada/etcd/ca.crt".to_owned()));
}

fn parse(pem: &str) -> x509_parser::pem::Pem {
    x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap().1
}

#[test]
fn certificates_chain_to_the_ca_and_round_trip_through_the_secret() {
    let o = ha();
    let pki = Pki::generate(Request { ca: None, etcd_sans: &o.etcd_sans() }).unwrap();
    let names: Vec<&str> = pki.files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "admin.crt",
            "admin.key",
            "ca.crt",
            "ca.key",
            "encryption.key",
            "etcd-client.crt",
            "etcd-client.key",
            "etcd-server.crt",
            "etcd-server.key",
            "sa.key"
        ]
    );
    let ca_pem = parse(&pki.files["ca.crt"]);
    let ca = ca_pem.parse_x509().unwrap();
    for name in ["admin.crt", "etcd-server.crt", "etcd-client.crt"] {
        let pem = parse(&pki.files[name]);
        let cert = pem.parse_x509().unwrap();
        assert_eq!(cert.issuer(), ca.subject(), "{name}");
        cert.verify_signature(Some(ca.public_key())).unwrap();
    }
    let admin_pem = parse(&pki.files["admin.crt"]);
    let admin = admin_pem.parse_x509().unwrap();
    assert_eq!(
        admin.subject().iter_organization().next().unwrap().as_str().unwrap(),
        "system:masters"
    );
    let etcd_pem = parse(&pki.files["etcd-server.crt"]);
    let etcd = etcd_pem.parse_x509().unwrap();
    let eku = etcd.extended_key_usage().unwrap().unwrap().value;
    assert!(
        eku.server_auth && eku.client_auth,
        "an etcd member's certificate serves and dials peers"
    );
    let san = format!("{:?}", etcd.subject_alternative_name().unwrap().unwrap().value);
    assert!(san.contains("*.etcd.karmada-system.svc.cluster.local"), "{san}");
    let key = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        pki.files["encryption.key"].as_bytes(),
    )
    .unwrap();
    assert_eq!(key.len(), 32);

    let secret = crate::pki::cert_secret("karmada-system", &pki);
    assert_eq!(Pki::from_secret(&secret).unwrap(), pki);
    let kubeconfig = crate::pki::kubeconfig_secret("karmada-system", &pki, &o.in_cluster_server());
    assert_eq!(kubeconfig["metadata"]["name"], KUBECONFIG_SECRET);
    let encoded = kubeconfig["data"][KUBECONFIG_KEY].as_str().unwrap();
    let decoded =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).unwrap();
    let config: Value = serde_yaml::from_slice(&decoded).unwrap();
    assert_eq!(
        config["clusters"][0]["cluster"]["server"],
        "https://karmada-apiserver.karmada-system.svc.cluster.local:5443"
    );
    assert_eq!(config["current-context"], CONTEXT);
}

/// A user's CA with a fuller subject: what it issues names that subject as issuer (so that
/// it chains), not just its common name.
#[test]
fn a_provided_ca_issues_under_its_own_subject() {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, "Example Root");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "Example Inc");
    params.distinguished_name.push(rcgen::DnType::CountryName, "NL");
    params.key_usages =
        vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let ca = apiserver::pki::Authority::from_pem(&cert.pem(), &key.serialize_pem()).unwrap();
    let pki = Pki::generate(Request { ca: Some(ca), etcd_sans: &[] }).unwrap();
    assert_eq!(pki.files["ca.crt"], cert.pem());
    let ca_pem = parse(&pki.files["ca.crt"]);
    let admin_pem = parse(&pki.files["admin.crt"]);
    let (ca, admin) = (ca_pem.parse_x509().unwrap(), admin_pem.parse_x509().unwrap());
    assert_eq!(admin.issuer(), ca.subject());
    admin.verify_signature(Some(ca.public_key())).unwrap();
    assert!(!pki.files.contains_key("etcd-server.crt"));
}
