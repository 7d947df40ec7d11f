//! Cluster resource models (CustomizedClusterResourceModeling): the grades a cluster's nodes are
//! counted in (`spec.resourceModels`, defaulted as upstream's API server does) and the count of
//! nodes per grade (`status.resourceSummary.allocatableModelings`): a node is of the highest
//! grade whose minimum every resource it has free reaches.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cluster::{AllocatableModeling, ResourceModel};

/// The largest quantity (what upstream's last grade reaches to).
pub const UNBOUNDED: &str = "9223372036854775807";

/// Upstream's default models: nine grades of CPU (cores) and memory (GiB) ranges.
pub fn default_models() -> Value {
    const CPU: [&str; 10] = ["0", "1", "2", "4", "8", "16", "32", "64", "128", UNBOUNDED];
    const MEMORY: [&str; 10] =
        ["0", "4Gi", "16Gi", "32Gi", "64Gi", "128Gi", "256Gi", "512Gi", "1Ti", UNBOUNDED];
    Value::Array(
        (0..9)
            .map(|grade| {
                json!({"grade": grade, "ranges": [
                    {"name": "cpu", "min": CPU[grade], "max": CPU[grade + 1]},
                    {"name": "memory", "min": MEMORY[grade], "max": MEMORY[grade + 1]},
                ]})
            })
            .collect(),
    )
}

/// As upstream normalizes user models: ordered by grade, the first grade's minimums 0 and the
/// last grade's maximums unbounded.
pub fn standardize(models: &mut [Value]) {
    models.sort_by_key(|m| m.get("grade").and_then(Value::as_u64).unwrap_or(0));
    let set = |model: Option<&mut Value>, field: &str, to: &str| {
        if let Some(ranges) = model.and_then(|m| m.get_mut("ranges")).and_then(Value::as_array_mut)
        {
            for range in ranges {
                range[field] = json!(to);
            }
        }
    };
    set(models.first_mut(), "min", "0");
    set(models.last_mut(), "max", UNBOUNDED);
}

/// Nodes per grade: each node (what it has free, milli-units) counted in the highest grade
/// whose minimum each modelled resource reaches (a resource it lacks counts as 0); a node
/// short of even the first grade's minimums is not counted. Every grade is listed.
pub fn allocatable_modelings(
    models: &[ResourceModel],
    nodes: &[BTreeMap<String, i128>],
) -> Vec<AllocatableModeling> {
    let mut counts = vec![0i64; models.len()];
    // Per resource, each grade's minimum (models are ordered by grade).
    let mut names: Vec<&str> = Vec::new();
    for model in models {
        for range in &model.ranges {
            if !names.contains(&range.name.as_str()) {
                names.push(&range.name);
            }
        }
    }
    let minimum = |model: &ResourceModel, name: &str| -> i128 {
        model
            .ranges
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| apimachinery::quantity::parse_milli(&r.min.0))
            .unwrap_or(0)
    };
    for free in nodes {
        // The lowest of the grades each resource reaches; none when one reaches no grade.
        let grade = names.iter().try_fold(usize::MAX, |grade, name| {
            let have = free.get(*name).copied().unwrap_or(0);
            models.iter().rposition(|m| minimum(m, name) <= have).map(|r| grade.min(r))
        });
        if let Some(g) = grade.filter(|g| *g < counts.len()) {
            counts[g] += 1;
        }
    }
    models
        .iter()
        .zip(counts)
        .map(|(m, count)| AllocatableModeling { grade: m.grade, count })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models() -> Vec<ResourceModel> {
        serde_json::from_value(default_models()).unwrap()
    }

    #[test]
    fn nodes_are_counted_in_the_grade_every_resource_reaches() {
        let gib = 1i128 << 30;
        let node = |cores: i128, mem_gib: i128| {
            BTreeMap::from([
                ("cpu".to_owned(), cores * 1000),
                ("memory".to_owned(), mem_gib * gib * 1000),
            ])
        };
        let counted = allocatable_modelings(
            &models(),
            &[
                node(24, 96),    // cpu grade 5 (16+), memory grade 4 (64Gi+): grade 4
                node(3, 100),    // cpu grade 2
                node(0, 0),      // grade 0
                node(200, 2048), // the last grade
            ],
        );
        let counts: Vec<(u32, i64)> = counted.iter().map(|m| (m.grade, m.count)).collect();
        assert_eq!(
            counts,
            [(0, 1), (1, 0), (2, 1), (3, 0), (4, 1), (5, 0), (6, 0), (7, 0), (8, 1)]
        );
        // Less than nothing free (overcommitted): not counted.
        let counted = allocatable_modelings(&models(), &[node(-1, 4)]);
        assert!(counted.iter().all(|m| m.count == 0));
    }

    #[test]
    fn user_models_are_standardized() {
        let mut models = vec![
            json!({"grade": 1, "ranges": [{"name": "cpu", "min": "2", "max": "4"}]}),
            json!({"grade": 0, "ranges": [{"name": "cpu", "min": "1", "max": "2"}]}),
        ];
        standardize(&mut models);
        assert_eq!(models[0]["grade"], 0);
        assert_eq!(models[0]["ranges"][0]["min"], "0");
        assert_eq!(models[1]["ranges"][0]["max"], UNBOUNDED);
        let defaults = default_models();
        assert_eq!(defaults.as_array().unwrap().len(), 9);
        assert_eq!(
            defaults[8]["ranges"][1],
            json!({"name": "memory", "min": "1Ti", "max": UNBOUNDED})
        );
        assert_eq!(defaults[1]["ranges"][0], json!({"name": "cpu", "min": "1", "max": "2"}));
    }
}
