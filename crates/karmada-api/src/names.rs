//! The names Karmada gives things, in one place: the labels and annotations that tie templates,
//! bindings, Works and member objects together, finalizers, execution namespaces, and the
//! names of bindings and Works. They are upstream Karmada's, so tools and tests written for
//! upstream find our objects.
//!
//! Upstream's layout: a policy claims a template with its permanent id as a label and its name
//! (and namespace) as annotations; a binding carries its policy's id label and name
//! annotations plus its own permanent id; a Work carries its binding's id as a label and the
//! binding's name as annotations; a member object carries the binding's and the Work's ids as
//! labels and their names as annotations. Names are annotations because they may be longer
//! than a label value (63 characters); ids are labels so that they can be selected.

/// A PropagationPolicy's permanent id (a label on the policy, and on what it claims).
pub const PP_PERMANENT_ID_LABEL: &str = "propagationpolicy.karmada.io/permanent-id";
/// The namespace of the PropagationPolicy that claims an object (annotation).
pub const PP_NAMESPACE_ANNOTATION: &str = "propagationpolicy.karmada.io/namespace";
/// The name of the PropagationPolicy that claims an object (annotation).
pub const PP_NAME_ANNOTATION: &str = "propagationpolicy.karmada.io/name";
/// A ClusterPropagationPolicy's permanent id (a label on the policy, and on what it claims).
pub const CPP_PERMANENT_ID_LABEL: &str = "clusterpropagationpolicy.karmada.io/permanent-id";
/// The name of the ClusterPropagationPolicy that claims an object (annotation).
pub const CPP_NAME_ANNOTATION: &str = "clusterpropagationpolicy.karmada.io/name";

/// Claim metadata written by earlier versions of karmada-rs as labels; read (and removed) so
/// that objects claimed then are still recognised.
pub const LEGACY_PP_NAME_LABEL: &str = "propagationpolicy.karmada.io/name";
pub const LEGACY_PP_NAMESPACE_LABEL: &str = "propagationpolicy.karmada.io/namespace";
pub const LEGACY_CPP_NAME_LABEL: &str = "clusterpropagationpolicy.karmada.io/name";

/// A ResourceBinding's permanent id (label on the binding, its Works and member objects).
pub const RB_PERMANENT_ID_LABEL: &str = "resourcebinding.karmada.io/permanent-id";
/// A ClusterResourceBinding's permanent id (label on the binding, its Works, member objects).
pub const CRB_PERMANENT_ID_LABEL: &str = "clusterresourcebinding.karmada.io/permanent-id";
/// The namespace of the ResourceBinding a Work or member object belongs to (annotation).
pub const RB_NAMESPACE_ANNOTATION: &str = "resourcebinding.karmada.io/namespace";
/// The name of the ResourceBinding a Work or member object belongs to (annotation).
pub const RB_NAME_ANNOTATION: &str = "resourcebinding.karmada.io/name";
/// The name of the ClusterResourceBinding a Work or member object belongs to (annotation).
pub const CRB_NAME_ANNOTATION: &str = "clusterresourcebinding.karmada.io/name";
/// Binding labels written by earlier versions of karmada-rs on Works (read, never written).
pub const LEGACY_RB_NAME_LABEL: &str = "resourcebinding.karmada.io/name";
pub const LEGACY_RB_NAMESPACE_LABEL: &str = "resourcebinding.karmada.io/namespace";
pub const LEGACY_CRB_NAME_LABEL: &str = "clusterresourcebinding.karmada.io/name";

/// A Work's permanent id (label on the Work and on the member objects it applies).
pub const WORK_PERMANENT_ID_LABEL: &str = "work.karmada.io/permanent-id";
/// The namespace of the Work that applied a member object (annotation).
pub const WORK_NAMESPACE_ANNOTATION: &str = "work.karmada.io/namespace";
/// The name of the Work that applied a member object (annotation).
pub const WORK_NAME_ANNOTATION: &str = "work.karmada.io/name";
/// How a Work's manifest treats an existing object it did not create (`overwrite`/`abort`).
pub const CONFLICT_RESOLUTION_ANNOTATION: &str = "work.karmada.io/conflict-resolution";

/// Every object Karmada applies to a member carries this label (`true`).
/// On a workload template: members keep the replicas they have (their own HPA sets them), the
/// template's replicas are not applied over them (`"true"`; any other value: not retained).
/// Set by the `hpaScaleTargetMarker` controller on the targets of propagated HPAs.
pub const RETAIN_REPLICAS_LABEL: &str = "resourcetemplate.karmada.io/retain-replicas";

pub const MANAGED_LABEL: &str = "karmada.io/managed";
/// The uid of the template a member object was rendered from (annotation).
pub const TEMPLATE_UID_ANNOTATION: &str = "resourcetemplate.karmada.io/uid";
/// The template's generation a member object was rendered from (annotation).
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "resourcetemplate.karmada.io/generation";
/// The annotation keys Karmada manages on a member object (comma separated, sorted).
pub const MANAGED_ANNOTATIONS_ANNOTATION: &str = "resourcetemplate.karmada.io/managed-annotations";
/// The label keys Karmada manages on a member object (comma separated, sorted).
pub const MANAGED_LABELS_ANNOTATION: &str = "resourcetemplate.karmada.io/managed-labels";

/// The labels that mark a member object as Karmada's: a policy's claim, the binding's and
/// the Work's ids, and [`MANAGED_LABEL`]. A member object Karmada lets go of (its Work deleted
/// with `preserveResourcesOnDeletion`) loses them.
pub const MANAGED_RESOURCE_LABELS: &[&str] = &[
    PP_PERMANENT_ID_LABEL,
    CPP_PERMANENT_ID_LABEL,
    RB_PERMANENT_ID_LABEL,
    CRB_PERMANENT_ID_LABEL,
    WORK_PERMANENT_ID_LABEL,
    MANAGED_LABEL,
];
/// The annotations that mark a member object as Karmada's (see [`MANAGED_RESOURCE_LABELS`]).
pub const MANAGED_RESOURCE_ANNOTATIONS: &[&str] = &[
    PP_NAME_ANNOTATION,
    PP_NAMESPACE_ANNOTATION,
    CPP_NAME_ANNOTATION,
    MANAGED_ANNOTATIONS_ANNOTATION,
    MANAGED_LABELS_ANNOTATION,
    RB_NAMESPACE_ANNOTATION,
    RB_NAME_ANNOTATION,
    CRB_NAME_ANNOTATION,
    TEMPLATE_UID_ANNOTATION,
    TEMPLATE_GENERATION_ANNOTATION,
    WORK_NAME_ANNOTATION,
    WORK_NAMESPACE_ANNOTATION,
];

/// A binding made for a dependency (`propagateDeps`) rather than by a policy: it follows the
/// bindings that require it (`requiredBy`).
pub const ATTACHED_LABEL: &str = "resourcebinding.karmada.io/attached";

/// The execution controller's finalizer on Works (it removes what a Work applied first).
pub const EXECUTION_FINALIZER: &str = "karmada.io/execution-controller";
/// The binding controller's finalizer on bindings (their Works go first).
pub const BINDING_FINALIZER: &str = "karmada.io/binding-controller";
/// The cluster controller's finalizer on Clusters (execution namespace and Works go first).
pub const CLUSTER_FINALIZER: &str = "karmada.io/cluster-controller";

/// The namespace holding member clusters' credentials (Secrets) and agents' Leases.
pub const CLUSTER_NAMESPACE: &str = "karmada-cluster";
/// The namespace of the control plane's own components (leader-election Leases).
pub const SYSTEM_NAMESPACE: &str = "karmada-system";

/// On objects karmada-search serves from its cache: the cluster the object was cached from.
pub const CACHE_SOURCE_ANNOTATION: &str = "resource.karmada.io/cached-from-cluster";

/// Execution namespaces (one per member cluster) are named `karmada-es-<cluster>`.
pub const EXECUTION_SPACE_PREFIX: &str = "karmada-es-";

/// The execution namespace of a member cluster.
pub fn execution_namespace(cluster: &str) -> String {
    format!("{EXECUTION_SPACE_PREFIX}{cluster}")
}

/// The member cluster of an execution namespace.
pub fn cluster_of_execution_namespace(namespace: &str) -> Option<&str> {
    namespace.strip_prefix(EXECUTION_SPACE_PREFIX)
}

/// The name of a template's binding: `<name>-<kind>` in lowercase, with `:` (allowed in RBAC
/// names, not in a binding's) replaced by `.`.
pub fn binding_name(kind: &str, name: &str) -> String {
    format!("{}-{kind}", name.replace(':', ".")).to_lowercase()
}

/// The name of the Works of a template, the same in every execution namespace: the template's
/// name (lowercase, `:` → `.`) and a hash of its namespace, name and kind — FNV-1a (32 bit) of
/// `namespace-name-kind` in lowercase, its decimal digits spelled with Kubernetes' safe
/// alphabet, as upstream does.
pub fn work_name(kind: &str, name: &str, namespace: &str) -> String {
    let name = name.replace(':', ".").to_lowercase();
    let key = if namespace.is_empty() {
        format!("{name}-{kind}")
    } else {
        format!("{namespace}-{name}-{kind}")
    }
    .to_lowercase();
    format!("{name}-{}", safe_encode(&fnv1a32(key.as_bytes()).to_string()))
}

/// The name `karmadactl promote` gives the policy it creates for a resource: the resource's
/// name (lowercase, `:` → `.`) and FNV-1a (32 bit) of its namespace and `group/version,
/// Kind=Kind`, spelled with the safe alphabet, as upstream's `GeneratePolicyName`.
pub fn promoted_policy_name(namespace: &str, name: &str, api_version: &str, kind: &str) -> String {
    let group_version =
        if api_version.contains('/') { api_version.to_owned() } else { format!("/{api_version}") };
    let key = format!("{namespace}{group_version}, Kind={kind}");
    format!("{}-{}", name.replace(':', "."), safe_encode(&fnv1a32(key.as_bytes()).to_string()))
        .to_lowercase()
}

fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Kubernetes' `rand.SafeEncodeString`: each byte mapped into an alphabet without vowels or
/// look-alike characters.
fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes().map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()])).collect()
}

// ---- Multi-cluster services (upstream's names)

/// On a collected EndpointSlice's Work: the namespace of the exported Service.
pub const SERVICE_NAMESPACE_LABEL: &str = "endpointslice.karmada.io/namespace";
/// On a collected EndpointSlice's Work: the name of the exported Service.
pub const SERVICE_NAME_LABEL: &str = "endpointslice.karmada.io/name";
/// On a collected EndpointSlice's Work: which controllers want it, `.`-joined
/// (`ServiceExport`, `MultiClusterService`).
pub const ENDPOINTSLICE_WORK_MANAGED_BY_LABEL: &str = "endpointslice.karmada.io/managed-by";
/// On the Works of a MultiClusterService (its own, the EndpointSlices collected for it and
/// those dispatched from it): the MultiClusterService's namespace.
pub const MCS_NAMESPACE_LABEL: &str = "multiclusterservice.karmada.io/namespace";
/// ... and its name.
pub const MCS_NAME_LABEL: &str = "multiclusterservice.karmada.io/name";
/// On a FederatedResourceQuota's Works: the quota's namespace and name.
pub const FRQ_NAMESPACE_LABEL: &str = "federatedresourcequota.karmada.io/namespace";
pub const FRQ_NAME_LABEL: &str = "federatedresourcequota.karmada.io/name";
/// A MultiClusterService's permanent id (label on it, the Service it claims, its binding and
/// Works).
pub const MCS_PERMANENT_ID_LABEL: &str = "multiclusterservice.karmada.io/permanent-id";
/// The MultiClusterService that propagates a Service (annotations on the Service and its
/// binding).
pub const MCS_NAME_ANNOTATION: &str = "multiclusterservice.karmada.io/name";
pub const MCS_NAMESPACE_ANNOTATION: &str = "multiclusterservice.karmada.io/namespace";
/// On a template: what propagates it instead of a policy (`MultiClusterService`); the
/// resource detector leaves such templates alone.
pub const CLAIMED_BY_LABEL: &str = "resourcetemplate.karmada.io/claimed-by";
/// On a binding: what made it instead of the detector (`MultiClusterService`).
pub const BINDING_MANAGED_BY_LABEL: &str = "binding.karmada.io/managed-by";
/// On a dispatched EndpointSlice and its Work: the cluster that provides its endpoints.
pub const PROVISION_CLUSTER_ANNOTATION: &str = "endpointslice.karmada.io/provision-cluster";
/// On a MultiClusterService while its Works and claim exist.
pub const MCS_FINALIZER: &str = "karmada.io/multiclusterservice-controller";
/// On a collected EndpointSlice's Work while ServiceExport's imported EndpointSlices exist.
pub const ENDPOINTSLICE_FINALIZER: &str = "karmada.io/endpointslice-controller";
/// On a collected EndpointSlice's Work while EndpointSlices dispatched from it exist.
pub const MCS_DISPATCH_FINALIZER: &str = "karmada.io/mcs-endpointslice-dispatch-controller";
/// `endpointslice.kubernetes.io/managed-by` of the EndpointSlices ServiceExport imports.
pub const ENDPOINTSLICE_CONTROLLER: &str = "endpointslice-controller.karmada.io";
/// `endpointslice.kubernetes.io/managed-by` of the EndpointSlices a MultiClusterService
/// dispatches.
pub const ENDPOINTSLICE_DISPATCH_CONTROLLER: &str = "endpointslice-dispatch-controller.karmada.io";
/// Kubernetes' EndpointSlice labels.
pub const SERVICE_NAME_OF_SLICE_LABEL: &str = "kubernetes.io/service-name";
pub const SLICE_MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";

/// Whether Karmada wrote an EndpointSlice (imported or dispatched: never collected again).
pub fn endpoint_slice_by_karmada(managed_by: Option<&str>) -> bool {
    matches!(managed_by, Some(ENDPOINTSLICE_CONTROLLER | ENDPOINTSLICE_DISPATCH_CONTROLLER))
}

/// The Service a ServiceImport is served through in a member (`derived-<name>`).
pub fn derived_service_name(service: &str) -> String {
    format!("derived-{service}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names computed by upstream Karmada's `names.GenerateWorkName` / `GenerateBindingName`.
    #[test]
    fn work_and_binding_names_are_upstreams() {
        let cases = [
            (("Deployment", "nginx", "default"), "nginx-687f7fb96f"),
            (("Deployment", "nginx", ""), "nginx-76f645955c"),
            (
                ("ClusterRole", "system:aggregate-to-edit", ""),
                "system.aggregate-to-edit-7c5f844fc5",
            ),
            (("Namespace", "karmada-e2e-abc", ""), "karmada-e2e-abc-7fbd958984"),
            (("ConfigMap", "Upper-Case", "ns1"), "upper-case-65c79f99fd"),
            (
                (
                    "Deployment",
                    "deployment-with-a-really-long-name-that-is-more-than-sixty-three-chars",
                    "karmadatest-xyz12",
                ),
                "deployment-with-a-really-long-name-that-is-more-than-sixty-three-chars-7b98c76c49",
            ),
            (("Service", "", ""), "-7dcd7c8bff"),
            (("Secret", "a", "b"), "a-89d8fd54"),
        ];
        for ((kind, name, namespace), want) in cases {
            assert_eq!(work_name(kind, name, namespace), want, "{kind} {namespace}/{name}");
        }
        assert_eq!(
            binding_name("ClusterRole", "system:aggregate-to-edit"),
            "system.aggregate-to-edit-clusterrole"
        );
        assert_eq!(binding_name("Deployment", "Web"), "web-deployment");
        // Computed by upstream's `names.GeneratePolicyName`.
        assert_eq!(
            promoted_policy_name("default", "nginx", "apps/v1", "Deployment"),
            "nginx-6d7f8d5f5b"
        );
        assert_eq!(
            promoted_policy_name(
                "",
                "cluster-admin",
                "rbac.authorization.k8s.io/v1",
                "ClusterRole"
            ),
            "cluster-admin-54499c54c"
        );
        assert_eq!(
            promoted_policy_name("ns1", "system:web", "v1", "ConfigMap"),
            "system.web-5f97749bb8"
        );
    }

    #[test]
    fn execution_namespaces() {
        assert_eq!(execution_namespace("member1"), "karmada-es-member1");
        assert_eq!(cluster_of_execution_namespace("karmada-es-member1"), Some("member1"));
        assert_eq!(cluster_of_execution_namespace("default"), None);
    }
}
