//! What `karmadactl init` installs on a host Kubernetes cluster, as pure functions of its
//! options: the control plane's objects ([`manifests`]) and its certificates ([`pki`]).
//!
//! The control plane is one image (`karmada` with its subcommands, and `karmadactl`): an API
//! server Deployment (its store redb on a volume for one replica, or etcd — a StatefulSet here
//! with TLS, or an external cluster — for several), the controller-manager and the scheduler
//! (leader-elected), a Job that generates the certificates into Secrets unless they exist, and
//! what those need (Services, RBAC for the Job, PodDisruptionBudgets when replicated). What
//! upstream runs besides — its webhook, aggregated API server, kube-controller-manager — is
//! part of our API server. Every object carries upstream's `karmada.io/bootstrapping` label,
//! by which `karmadactl deinit` finds them.

pub mod cluster;
pub mod pki;

use serde_json::{Value, json};

pub const BOOTSTRAPPING_LABEL: &str = "karmada.io/bootstrapping";
pub const BOOTSTRAPPING_VALUE: &str = "app-defaults";
pub const APISERVER: &str = "karmada-apiserver";
pub const CONTROLLER_MANAGER: &str = "karmada-controller-manager";
pub const SCHEDULER: &str = "karmada-scheduler";
pub const ETCD: &str = "etcd";
pub const ETCD_CLIENT: &str = "etcd-client";
/// The Job (and its ServiceAccount, Role and RoleBinding) that generates the certificates.
pub const INIT_SECRETS: &str = "karmada-init-secrets";
/// The CA, the admin certificate, the service account and encryption keys, etcd's certificates.
pub const CERT_SECRET: &str = "karmada-cert";
/// The components' kubeconfig of the control plane (key [`KUBECONFIG_KEY`]).
pub const KUBECONFIG_SECRET: &str = "karmada-kubeconfig";
pub const KUBECONFIG_KEY: &str = "karmada.config";
/// An external etcd's CA and client certificate (`ca.crt`, `client.crt`, `client.key`).
pub const EXTERNAL_ETCD_SECRET: &str = "karmada-external-etcd";
/// The data volume claim of a redb API server.
pub const APISERVER_DATA: &str = "karmada-apiserver-data";
pub const APISERVER_PORT: u16 = 5443;
pub const CONTROLLER_MANAGER_PROBE_PORT: u16 = 10357;
pub const SCHEDULER_PROBE_PORT: u16 = 10351;
/// The image's non-root user (distroless's `nonroot`).
pub const RUN_AS: i64 = 65532;
/// The name of the cluster, user and context in the kubeconfigs written.
pub const CONTEXT: &str = "karmada-apiserver";

const BINARY: &str = "/usr/local/bin/karmada";
const PKI_MOUNT: &str = "/etc/karmada/pki";
const CONFIG_MOUNT: &str = "/etc/karmada/config";
const EXTERNAL_ETCD_MOUNT: &str = "/etc/karmada/etcd";
const DATA_MOUNT: &str = "/var/lib/karmada";
const ETCD_DATA_MOUNT: &str = "/var/lib/etcd";

/// The image `karmadactl init` installs unless told otherwise: what the repository's
/// Dockerfile builds, tagged with this version.
pub fn default_image() -> String {
    format!("karmada-rs/karmada:v{}", env!("CARGO_PKG_VERSION"))
}

pub const DEFAULT_ETCD_IMAGE: &str = "registry.k8s.io/etcd:3.6.8-0";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }

    pub fn parse(s: &str) -> Result<PullPolicy, InvalidOptions> {
        match s {
            "Always" => Ok(PullPolicy::Always),
            "IfNotPresent" => Ok(PullPolicy::IfNotPresent),
            "Never" => Ok(PullPolicy::Never),
            other => Err(InvalidOptions(format!(
                "--image-pull-policy {other:?}: one of Always, IfNotPresent, Never"
            ))),
        }
    }
}

/// Where the store's data lives (upstream's `--etcd-storage-mode`, here also a redb API
/// server's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// A PersistentVolumeClaim (per etcd member), of `size`, of `class` or the default class.
    Pvc { class: Option<String>, size: String },
    /// A directory on the node (the pod must come back to the same node to find it).
    HostPath { path: String },
    /// Gone with the pod: for trying things out.
    EmptyDir,
}

impl Storage {
    pub fn parse(
        mode: &str,
        class: Option<String>,
        size: String,
        path: String,
    ) -> Result<Storage, InvalidOptions> {
        match mode {
            "PVC" => Ok(Storage::Pvc { class, size }),
            "hostPath" => Ok(Storage::HostPath { path }),
            "emptyDir" => Ok(Storage::EmptyDir),
            other => Err(InvalidOptions(format!(
                "--etcd-storage-mode {other:?}: one of PVC, hostPath, emptyDir"
            ))),
        }
    }
}

/// The API server's store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    /// redb in the API server's data volume: one API server replica.
    Redb,
    /// An etcd StatefulSet of `replicas` members, TLS between all.
    Etcd { replicas: u32, image: String },
    /// The user's etcd (its certificates in [`EXTERNAL_ETCD_SECRET`]), keys under `prefix`.
    ExternalEtcd { servers: Vec<String>, prefix: String },
}

/// How the API server is reached from outside the host cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceType {
    NodePort { port: u16 },
    LoadBalancer,
    ClusterIp,
}

impl ServiceType {
    pub fn parse(s: &str, node_port: u16) -> Result<ServiceType, InvalidOptions> {
        match s {
            "NodePort" => Ok(ServiceType::NodePort { port: node_port }),
            "LoadBalancer" => Ok(ServiceType::LoadBalancer),
            "ClusterIP" => Ok(ServiceType::ClusterIp),
            other => Err(InvalidOptions(format!(
                "--karmada-apiserver-service-type {other:?}: one of NodePort, LoadBalancer, ClusterIP"
            ))),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub namespace: String,
    pub image: String,
    pub pull_policy: PullPolicy,
    pub pull_secrets: Vec<String>,
    pub store: Store,
    pub storage: Storage,
    pub apiserver_replicas: u32,
    pub controller_manager_replicas: u32,
    pub scheduler_replicas: u32,
    pub service: ServiceType,
    /// The host cluster's DNS domain (`cluster.local`).
    pub cluster_domain: String,
    /// More names for the API server's serving certificate (the address users reach it at).
    pub tls_sans: Vec<String>,
    pub priority_class: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            namespace: "karmada-system".into(),
            image: default_image(),
            pull_policy: PullPolicy::IfNotPresent,
            pull_secrets: Vec::new(),
            store: Store::Redb,
            storage: Storage::Pvc { class: None, size: "5Gi".into() },
            apiserver_replicas: 1,
            controller_manager_replicas: 1,
            scheduler_replicas: 1,
            service: ServiceType::NodePort { port: 32443 },
            cluster_domain: "cluster.local".into(),
            tls_sans: Vec::new(),
            priority_class: "system-node-critical".into(),
        }
    }
}

/// Options that cannot make a working control plane, with the flag to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidOptions(pub String);

impl Options {
    pub fn validate(&self) -> Result<(), InvalidOptions> {
        let fail = |m: &str| Err(InvalidOptions(m.to_owned()));
        if self.namespace.is_empty() || self.image.is_empty() {
            return fail("--namespace and the image must not be empty");
        }
        for (flag, n) in [
            ("--karmada-apiserver-replicas", self.apiserver_replicas),
            ("--karmada-controller-manager-replicas", self.controller_manager_replicas),
            ("--karmada-scheduler-replicas", self.scheduler_replicas),
        ] {
            if n == 0 {
                return Err(InvalidOptions(format!("{flag} must be at least 1")));
            }
        }
        match &self.store {
            Store::Redb if self.apiserver_replicas > 1 => fail(
                "redb is one API server's store: more than one --karmada-apiserver-replicas needs --store etcd (or --external-etcd-servers)",
            ),
            Store::Etcd { replicas, .. } if *replicas == 0 || replicas % 2 == 0 => {
                fail("--etcd-replicas must be odd (1, 3, 5...): etcd needs a majority")
            }
            Store::ExternalEtcd { servers, .. } if servers.is_empty() => {
                fail("--external-etcd-servers needs at least one URL")
            }
            _ => Ok(()),
        }
    }

    /// The API server Service's in-cluster DNS name.
    pub fn service_host(&self) -> String {
        format!("{APISERVER}.{}.svc.{}", self.namespace, self.cluster_domain)
    }

    /// The URL the components (and the certificate Job's kubeconfig) use.
    pub fn in_cluster_server(&self) -> String {
        format!("https://{}:{APISERVER_PORT}", self.service_host())
    }

    /// Every name of the API server's serving certificate besides localhost and its pod IP.
    pub fn apiserver_sans(&self) -> Vec<String> {
        let ns = &self.namespace;
        let mut sans = vec![
            APISERVER.to_owned(),
            format!("{APISERVER}.{ns}"),
            format!("{APISERVER}.{ns}.svc"),
            self.service_host(),
        ];
        for san in &self.tls_sans {
            if !sans.contains(san) {
                sans.push(san.clone());
            }
        }
        sans
    }

    /// The names of the local etcd members' certificate (members and the client Service);
    /// none without a local etcd (then no etcd certificates are made).
    pub fn etcd_sans(&self) -> Vec<String> {
        if self.local_etcd().is_none() {
            return Vec::new();
        }
        let (ns, domain) = (&self.namespace, &self.cluster_domain);
        vec![
            format!("*.{ETCD}.{ns}.svc.{domain}"),
            format!("{ETCD}.{ns}.svc.{domain}"),
            format!("{ETCD_CLIENT}.{ns}.svc.{domain}"),
            format!("{ETCD_CLIENT}.{ns}.svc"),
            ETCD_CLIENT.to_owned(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ]
    }

    fn local_etcd(&self) -> Option<(u32, &str)> {
        match &self.store {
            Store::Etcd { replicas, image } => Some((*replicas, image)),
            _ => None,
        }
    }

    fn labels(&self, app: &str) -> Value {
        json!({"app": app, BOOTSTRAPPING_LABEL: BOOTSTRAPPING_VALUE})
    }

    fn meta(&self, name: &str, app: &str) -> Value {
        json!({"name": name, "namespace": self.namespace, "labels": self.labels(app)})
    }
}

/// The control plane's objects, in the order to create them. The certificates are not among
/// them: the Job makes them in the cluster unless they exist (`karmadactl init` creates them
/// first, from its own CA or a given one; [`pki`]).
pub fn manifests(o: &Options) -> Result<Vec<Value>, InvalidOptions> {
    o.validate()?;
    let mut objects = vec![json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": o.namespace, "labels": {BOOTSTRAPPING_LABEL: BOOTSTRAPPING_VALUE}},
    })];
    objects.extend(init_secrets(o));
    if let Some((replicas, image)) = o.local_etcd() {
        objects.extend(etcd(o, replicas, image));
    }
    objects.extend(apiserver(o));
    objects.push(component(
        o,
        CONTROLLER_MANAGER,
        o.controller_manager_replicas,
        controller_manager_args(),
        CONTROLLER_MANAGER_PROBE_PORT,
        resources("100m", "128Mi", "2Gi"),
    ));
    objects.push(component(
        o,
        SCHEDULER,
        o.scheduler_replicas,
        scheduler_args(),
        SCHEDULER_PROBE_PORT,
        resources("50m", "64Mi", "1Gi"),
    ));
    for (app, replicas) in [
        (APISERVER, o.apiserver_replicas),
        (CONTROLLER_MANAGER, o.controller_manager_replicas),
        (SCHEDULER, o.scheduler_replicas),
    ] {
        if replicas > 1 {
            objects.push(disruption_budget(o, app, json!({"minAvailable": 1})));
        }
    }
    Ok(objects)
}

/// Requests from the benchmarks (BENCHMARKS.md: the API server and the controller-manager each
/// stay under ~200 MiB up to 1,000 workloads and ~900 MiB at 10,000); memory limits with room
/// for 10,000 workloads; no CPU limit (a throttled API server times its clients out).
fn resources(cpu: &str, memory: &str, memory_limit: &str) -> Value {
    json!({"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}})
}

fn pod_security() -> Value {
    json!({
        "runAsNonRoot": true, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

fn container_security() -> Value {
    json!({
        "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]},
    })
}

/// A pod template of `app` with the common parts (labels, security, pull secrets, priority).
fn pod(o: &Options, app: &str, mut spec: Value) -> Value {
    spec["securityContext"] = pod_security();
    spec["priorityClassName"] = o.priority_class.clone().into();
    if !o.pull_secrets.is_empty() {
        spec["imagePullSecrets"] =
            o.pull_secrets.iter().map(|name| json!({"name": name})).collect();
    }
    json!({"metadata": {"labels": o.labels(app)}, "spec": spec})
}

fn container(o: &Options, name: &str, args: Vec<String>) -> Value {
    json!({
        "name": name, "image": o.image, "imagePullPolicy": o.pull_policy.as_str(),
        "command": [BINARY], "args": args, "securityContext": container_security(),
    })
}

fn secret_volume(name: &str, secret: &str) -> Value {
    // Read by the owner only; with the pod's fsGroup the kubelet adds group read, which the
    // API server accepts of root-owned files.
    json!({"name": name, "secret": {"secretName": secret, "defaultMode": 0o400}})
}

fn http_probe(path: &str, port: u16, scheme: &str, period: u32, failures: u32) -> Value {
    json!({
        "httpGet": {"path": path, "port": port, "scheme": scheme},
        "periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": failures,
    })
}

fn disruption_budget(o: &Options, app: &str, rule: Value) -> Value {
    let mut spec = json!({"selector": {"matchLabels": {"app": app}}});
    if let (Some(spec), Some(rule)) = (spec.as_object_mut(), rule.as_object()) {
        spec.extend(rule.clone());
    }
    json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": o.meta(app, app), "spec": spec})
}

/// Prefers spreading replicas over nodes (required would leave a small host unable to roll).
fn spread(app: &str) -> Value {
    json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
        "weight": 100,
        "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"app": app}}},
    }]}})
}

fn init_secrets(o: &Options) -> Vec<Value> {
    let meta = o.meta(INIT_SECRETS, INIT_SECRETS);
    let mut args = vec![
        "init-secrets".to_owned(),
        format!("--namespace={}", o.namespace),
        format!("--server={}", o.in_cluster_server()),
    ];
    let etcd_sans = o.etcd_sans();
    if !etcd_sans.is_empty() {
        args.push(format!("--etcd-sans={}", etcd_sans.join(",")));
    }
    let mut job_container = container(o, "init-secrets", args);
    job_container["resources"] = resources("50m", "32Mi", "128Mi");
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create"]}],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": INIT_SECRETS},
            "subjects": [{"kind": "ServiceAccount", "name": INIT_SECRETS, "namespace": o.namespace}],
        }),
        json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {
                "backoffLimit": 6,
                "template": pod(o, INIT_SECRETS, json!({
                    "serviceAccountName": INIT_SECRETS,
                    "restartPolicy": "OnFailure",
                    "containers": [job_container],
                })),
            },
        }),
    ]
}

fn etcd(o: &Options, replicas: u32, image: &str) -> Vec<Value> {
    let (ns, domain) = (&o.namespace, &o.cluster_domain);
    let peer = |i: u32| format!("https://{ETCD}-{i}.{ETCD}.{ns}.svc.{domain}");
    let initial_cluster =
        (0..replicas).map(|i| format!("{ETCD}-{i}={}:2380", peer(i))).collect::<Vec<_>>();
    let own = format!("https://$(POD_NAME).{ETCD}.{ns}.svc.{domain}");
    let pki = "/etc/etcd/pki";
    let command = vec![
        "/usr/local/bin/etcd".to_owned(),
        "--name=$(POD_NAME)".to_owned(),
        format!("--data-dir={ETCD_DATA_MOUNT}/data"),
        "--listen-client-urls=https://0.0.0.0:2379".to_owned(),
        format!("--advertise-client-urls={own}:2379"),
        "--listen-peer-urls=https://0.0.0.0:2380".to_owned(),
        format!("--initial-advertise-peer-urls={own}:2380"),
        format!("--initial-cluster={}", initial_cluster.join(",")),
        "--initial-cluster-state=new".to_owned(),
        format!("--initial-cluster-token={ETCD}-{ns}"),
        "--listen-metrics-urls=http://0.0.0.0:2381".to_owned(),
        "--client-cert-auth=true".to_owned(),
        format!("--trusted-ca-file={pki}/ca.crt"),
        format!("--cert-file={pki}/etcd-server.crt"),
        format!("--key-file={pki}/etcd-server.key"),
        "--peer-client-cert-auth=true".to_owned(),
        format!("--peer-trusted-ca-file={pki}/ca.crt"),
        format!("--peer-cert-file={pki}/etcd-server.crt"),
        format!("--peer-key-file={pki}/etcd-server.key"),
        // The API server compacts (every 5 minutes); etcd only bounds its file.
        "--quota-backend-bytes=8589934592".to_owned(),
    ];
    let items: Vec<Value> = ["ca.crt", "etcd-server.crt", "etcd-server.key"]
        .iter()
        .map(|k| json!({"key": k, "path": k}))
        .collect();
    // Only what a member needs: not the CA key, not the admin's.
    let mut volumes = vec![json!({"name": "pki", "secret": {
        "secretName": CERT_SECRET, "defaultMode": 0o400, "items": items,
    }})];
    let mut claims = Vec::new();
    match &o.storage {
        Storage::Pvc { class, size } => {
            let mut spec = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}});
            if let Some(class) = class {
                spec["storageClassName"] = class.clone().into();
            }
            claims.push(json!({"metadata": {"name": "data"}, "spec": spec}));
        }
        Storage::HostPath { path } => volumes
            .push(json!({"name": "data", "hostPath": {"path": path, "type": "DirectoryOrCreate"}})),
        Storage::EmptyDir => volumes.push(json!({"name": "data", "emptyDir": {}})),
    }
    let probe = |path: &str, period, failures| http_probe(path, 2381, "HTTP", period, failures);
    let mut spec = json!({
        "replicas": replicas,
        "serviceName": ETCD,
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": {"app": ETCD}},
        "template": pod(o, ETCD, json!({
            "automountServiceAccountToken": false,
            "affinity": spread(ETCD),
            "containers": [{
                "name": ETCD, "image": image, "imagePullPolicy": o.pull_policy.as_str(),
                "command": command,
                "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "ports": [{"name": "client", "containerPort": 2379}, {"name": "peer", "containerPort": 2380}],
                "livenessProbe": probe("/livez", 10, 6),
                "readinessProbe": probe("/readyz", 5, 3),
                "resources": resources("100m", "128Mi", "2Gi"),
                "securityContext": container_security(),
                "volumeMounts": [{"name": "pki", "mountPath": pki, "readOnly": true},
                                 {"name": "data", "mountPath": ETCD_DATA_MOUNT}],
            }],
            "volumes": volumes,
        })),
    });
    if !claims.is_empty() {
        spec["volumeClaimTemplates"] = claims.into();
    }
    let ports = json!([{"name": "client", "port": 2379}, {"name": "peer", "port": 2380}]);
    let mut objects = vec![
        // Members find each other by name before they are ready.
        json!({"apiVersion": "v1", "kind": "Service", "metadata": o.meta(ETCD, ETCD), "spec": {
            "clusterIP": "None", "publishNotReadyAddresses": true,
            "selector": {"app": ETCD}, "ports": ports}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": o.meta(ETCD_CLIENT, ETCD), "spec": {
            "selector": {"app": ETCD}, "ports": [{"name": "client", "port": 2379}]}}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": o.meta(ETCD, ETCD), "spec": spec}),
    ];
    if replicas > 1 {
        objects.push(disruption_budget(o, ETCD, json!({"maxUnavailable": 1})));
    }
    objects
}

fn apiserver(o: &Options) -> Vec<Value> {
    let mut args = vec![
        "apiserver".to_owned(),
        format!("--bind=0.0.0.0:{APISERVER_PORT}"),
        format!("--data-dir={DATA_MOUNT}/data"),
        format!("--pki-dir={PKI_MOUNT}"),
        format!("--tls-san={}", o.apiserver_sans().join(",")),
    ];
    let mut mounts = vec![json!({"name": "pki", "mountPath": PKI_MOUNT, "readOnly": true})];
    let mut volumes = vec![secret_volume("pki", CERT_SECRET)];
    match &o.store {
        Store::Redb => args.push("--store=redb".into()),
        Store::Etcd { .. } => args.extend([
            format!(
                "--store=etcd:https://{ETCD_CLIENT}.{}.svc.{}:2379",
                o.namespace, o.cluster_domain
            ),
            format!("--etcd-cafile={PKI_MOUNT}/ca.crt"),
            format!("--etcd-certfile={PKI_MOUNT}/etcd-client.crt"),
            format!("--etcd-keyfile={PKI_MOUNT}/etcd-client.key"),
        ]),
        Store::ExternalEtcd { servers, prefix } => {
            args.extend([
                format!("--store=etcd:{}", servers.join(",")),
                format!("--etcd-cafile={EXTERNAL_ETCD_MOUNT}/ca.crt"),
                format!("--etcd-certfile={EXTERNAL_ETCD_MOUNT}/client.crt"),
                format!("--etcd-keyfile={EXTERNAL_ETCD_MOUNT}/client.key"),
            ]);
            if !prefix.is_empty() {
                args.push(format!("--etcd-prefix={prefix}"));
            }
            mounts
                .push(json!({"name": "etcd", "mountPath": EXTERNAL_ETCD_MOUNT, "readOnly": true}));
            volumes.push(secret_volume("etcd", EXTERNAL_ETCD_SECRET));
        }
    }
    mounts.push(json!({"name": "data", "mountPath": DATA_MOUNT}));
    let mut objects = Vec::new();
    // redb keeps the objects in the data volume; with etcd it holds only the admin kubeconfig.
    volumes.push(match (&o.store, &o.storage) {
        (Store::Redb, Storage::Pvc { class, size }) => {
            let mut spec = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}});
            if let Some(class) = class {
                spec["storageClassName"] = class.clone().into();
            }
            objects.push(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                "metadata": o.meta(APISERVER_DATA, APISERVER), "spec": spec}));
            json!({"name": "data", "persistentVolumeClaim": {"claimName": APISERVER_DATA}})
        }
        (Store::Redb, Storage::HostPath { path }) => {
            json!({"name": "data", "hostPath": {"path": path, "type": "DirectoryOrCreate"}})
        }
        _ => json!({"name": "data", "emptyDir": {}}),
    });
    let mut service = json!({
        "selector": {"app": APISERVER},
        "ports": [{"name": "server", "protocol": "TCP", "port": APISERVER_PORT, "targetPort": APISERVER_PORT}],
    });
    match o.service {
        ServiceType::NodePort { port } => {
            service["type"] = "NodePort".into();
            service["ports"][0]["nodePort"] = port.into();
        }
        ServiceType::LoadBalancer => service["type"] = "LoadBalancer".into(),
        ServiceType::ClusterIp => service["type"] = "ClusterIP".into(),
    }
    objects.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": o.meta(APISERVER, APISERVER), "spec": service}));
    let mut main = container(o, APISERVER, args);
    main["ports"] = json!([{"name": "server", "containerPort": APISERVER_PORT}]);
    // Opening a large redb store or reaching etcd can take a while: the startup probe allows
    // 5 minutes before liveness applies.
    main["startupProbe"] = http_probe("/livez", APISERVER_PORT, "HTTPS", 5, 60);
    main["livenessProbe"] = http_probe("/livez", APISERVER_PORT, "HTTPS", 10, 3);
    main["readinessProbe"] = http_probe("/readyz", APISERVER_PORT, "HTTPS", 5, 3);
    main["resources"] = resources("250m", "256Mi", "4Gi");
    main["volumeMounts"] = mounts.into();
    let mut spec = json!({
        "replicas": o.apiserver_replicas,
        "selector": {"matchLabels": {"app": APISERVER}},
        "template": pod(o, APISERVER, json!({
            "automountServiceAccountToken": false,
            "affinity": spread(APISERVER),
            "containers": [main],
            "volumes": volumes,
        })),
    });
    if o.store == Store::Redb {
        // One writer of the redb file: the old pod stops before the new one opens it.
        spec["strategy"] = json!({"type": "Recreate"});
    }
    objects.push(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": o.meta(APISERVER, APISERVER), "spec": spec}));
    objects
}

fn kubeconfig_arg() -> String {
    format!("--kubeconfig={CONFIG_MOUNT}/{KUBECONFIG_KEY}")
}

fn controller_manager_args() -> Vec<String> {
    vec![
        "controller-manager".to_owned(),
        kubeconfig_arg(),
        "--leader-elect=true".to_owned(),
        format!("--health-probe-bind-address=0.0.0.0:{CONTROLLER_MANAGER_PROBE_PORT}"),
        "--cluster-status-update-frequency=10s".to_owned(),
    ]
}

fn scheduler_args() -> Vec<String> {
    vec![
        "scheduler".to_owned(),
        kubeconfig_arg(),
        "--leader-elect=true".to_owned(),
        format!("--health-probe-bind-address=0.0.0.0:{SCHEDULER_PROBE_PORT}"),
        "--enable-scheduler-estimator=true".to_owned(),
    ]
}

/// The controller-manager's or the scheduler's Deployment: an API client of the control plane
/// through the kubeconfig Secret, leader-elected, probed over plain HTTP.
fn component(
    o: &Options,
    app: &str,
    replicas: u32,
    args: Vec<String>,
    probe_port: u16,
    resources: Value,
) -> Value {
    let mut main = container(o, app, args);
    main["livenessProbe"] = http_probe("/healthz", probe_port, "HTTP", 10, 3);
    main["readinessProbe"] = http_probe("/readyz", probe_port, "HTTP", 5, 3);
    main["resources"] = resources;
    main["volumeMounts"] = json!([{"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": true}]);
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": o.meta(app, app),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": pod(o, app, json!({
                "automountServiceAccountToken": false,
                "affinity": spread(app),
                "containers": [main],
                "volumes": [secret_volume("config", KUBECONFIG_SECRET)],
            })),
        },
    })
}

/// `objects` as one YAML stream (`---` between documents), as `kubectl apply -f` reads it.
pub fn to_yaml(objects: &[Value]) -> String {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(object).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests;
