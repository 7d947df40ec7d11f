//! Karmada's APIs on the control plane's API server: the kinds of `karmada-api` become
//! resource definitions, and its defaulting/validation runs as admission.

use std::sync::Arc;

use karmada_api::features::{Feature, FeatureGates};

use apimachinery::ApiError;
use apiserver::registry::{Column, Printer, ResourceDef};
use apiserver::{Admission, AdmissionRequest, Operation};
use karmada_api::admission::{self, Env};
use karmada_api::kinds::{CATEGORY, KINDS};
use karmada_api::names;
use serde_json::Value;

/// Resource definitions for every Karmada kind (one per served version).
pub fn resource_defs() -> Vec<ResourceDef> {
    let mut defs = Vec::new();
    for kind in KINDS {
        let columns: Vec<Column> = kind
            .columns
            .iter()
            .map(|(name, type_, path, priority, default)| Column {
                name: (*name).to_owned(),
                type_: (*type_).to_owned(),
                format: String::new(),
                description: String::new(),
                priority: *priority,
                json_path: (*path).to_owned(),
                default_value: default.map(str::to_owned),
            })
            .collect();
        for version in kind.versions {
            defs.push(ResourceDef {
                group: kind.group.to_owned(),
                version: (*version).to_owned(),
                kind: kind.kind.to_owned(),
                plural: kind.plural.to_owned(),
                singular: kind.kind.to_lowercase(),
                namespaced: kind.namespaced,
                short_names: kind.short_names.iter().map(|s| (*s).to_owned()).collect(),
                categories: vec![CATEGORY.to_owned()],
                status: kind.status,
                scale: None,
                generation: true,
                printer: Printer::Columns(columns.clone()),
                strategic: false,
                schema: Some(Arc::new(kind.schema_of(version))),
                custom: true,
                storage_version: kind.versions[0].to_owned(),
                protobuf: false,
                openapi: None,
                stored_as: None,
                conversion: kind.older(version).map(|o| apiserver::registry::Conversion {
                    to_storage: o.to_storage,
                    from_storage: o.from_storage,
                }),
                verbs: apiserver::registry::Verbs::All,
            });
        }
    }
    defs
}

/// Upstream Karmada's webhooks, inside the API server.
pub struct KarmadaAdmission {
    /// CustomizedClusterResourceModeling.
    pub resource_modeling: bool,
}

impl Admission for KarmadaAdmission {
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError> {
        let operation = match request.operation {
            Operation::Delete => return admission::check_delete(object),
            Operation::Create => admission::Operation::Create,
            Operation::Update => admission::Operation::Update,
        };
        if request.subresource.is_some() {
            return Ok(());
        }
        let now = apiserver::api::now_rfc3339();
        let new_id = || uuid::Uuid::new_v4().to_string();
        let env = Env {
            new_id: &new_id,
            now: &now,
            check_script: &interpreter::check_syntax,
            resource_modeling: self.resource_modeling,
        };
        admission::admit(
            &request.def.group,
            &request.def.kind,
            operation,
            request.old,
            object,
            &env,
        )
    }
}

/// Upstream's ResourceInterpreterCustomization webhook's check against the stored ones: no two
/// customizations of one kind set the same operation.
struct CustomizationConflicts;

impl apiserver::storage::PeerCheck for CustomizationConflicts {
    fn check(&self, object: &Value, peers: &[Value]) -> Result<(), ApiError> {
        let spec_of = |o: &Value| {
            serde_json::from_value::<karmada_api::config::ResourceInterpreterCustomizationSpec>(
                o.get("spec").cloned().unwrap_or_default(),
            )
            .ok()
        };
        let Some(spec) = spec_of(object) else { return Ok(()) };
        let others: Vec<_> = peers
            .iter()
            .filter_map(|p| Some((apimachinery::object::name(p).to_owned(), spec_of(p)?)))
            .collect();
        let causes = admission::customization_conflicts(&spec, &others);
        if causes.is_empty() {
            return Ok(());
        }
        Err(ApiError::invalid(
            "ResourceInterpreterCustomization",
            "config.karmada.io",
            apimachinery::object::name(object),
            causes,
        ))
    }
}

/// Adds Karmada's kinds and admission to an API server configuration; `features` are the
/// gates upstream's webhook takes (FederatedQuotaEnforcement).
pub fn install(config: &mut apiserver::Config, features: &FeatureGates) {
    config.resources.extend(resource_defs());
    config.admission.push(Arc::new(KarmadaAdmission {
        resource_modeling: features.enabled(Feature::CustomizedClusterResourceModeling),
    }));
    config.peer_checks.push((
        "config.karmada.io".to_owned(),
        "resourceinterpretercustomizations".to_owned(),
        Arc::new(CustomizationConflicts),
    ));
    // FederatedQuotaEnforcement (upstream's ResourceBinding webhook).
    if features.enabled(Feature::FederatedQuotaEnforcement) {
        config.write_checks.push((
            "work.karmada.io".to_owned(),
            "resourcebindings".to_owned(),
            Arc::new(crate::quota::QuotaEnforcement::default()),
        ));
    }
    let cluster_proxy = Arc::new(crate::proxy::ClusterProxy::default());
    config.proxies.push((
        "cluster.karmada.io".to_owned(),
        "clusters".to_owned(),
        Arc::clone(&cluster_proxy) as Arc<dyn apiserver::Proxy>,
    ));
    let search = crate::search::Search::new(cluster_proxy);
    config.proxies.extend(search.endpoints());
    config.background.push(search);
    // metrics.k8s.io gathered from the members (upstream's karmada-metrics-adapter).
    config.computed.extend(crate::metrics::kinds());
    config.admission.push(Arc::new(crate::access::AgentAdmission));
    config.authorizer = Arc::new(crate::access::KarmadaAuthorizer);
    config.csr_approver = Some(Arc::new(crate::access::AgentCsrApprover));
    config.rbac = true;
    config.rbac_bootstrap.extend(crate::access::rbac_bootstrap());
    config.exempt_groups.push(crate::access::COMPONENTS_GROUP.to_owned());
    // Upstream installs every Karmada kind as a CRD; tools look for them (`kubectl get crd`).
    config.served_crds.extend(karmada_api::kinds::KINDS.iter().map(karmada_api::schema::crd));
    // Leader-election Leases live in karmada-system; cluster secrets and agent Leases in
    // karmada-cluster.
    config
        .namespaces
        .extend([names::SYSTEM_NAMESPACE.to_owned(), names::CLUSTER_NAMESPACE.to_owned()]);
}
