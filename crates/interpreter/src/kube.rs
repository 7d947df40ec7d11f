//! The `kube` library scripts load with `local kube = require("kube")`, with the functions
//! upstream's scripts call:
//!
//! - `kube.resourceAdd(q1, q2, ...)`: the sum of quantities (`nil` counts as zero), as a
//!   canonical quantity string;
//! - `kube.getResourceQuantity(q)`: a quantity as a number (`"1500m"` → 1.5);
//! - `kube.accuratePodRequirements(podTemplate)`: what one replica of a pod template needs, as
//!   a binding's `replicaRequirements` (nodeClaim, resourceRequest, priorityClassName);
//! - `kube.getPodDependencies(podTemplate, namespace)`: the ConfigMaps, Secrets,
//!   ServiceAccount and PersistentVolumeClaims a pod template refers to, as dependency
//!   references in `namespace` (default `default`).

use apimachinery::quantity;
use mlua::{Lua, Table, Value as LuaValue};
use serde_json::{Value, json};

/// The module name scripts require.
pub const NAME: &str = "kube";

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let kube = lua.create_table()?;
    kube.raw_set("resourceAdd", lua.create_function(resource_add)?)?;
    kube.raw_set("getResourceQuantity", lua.create_function(resource_quantity)?)?;
    kube.raw_set("accuratePodRequirements", lua.create_function(pod_requirements)?)?;
    kube.raw_set("getPodDependencies", lua.create_function(pod_dependencies)?)?;
    Ok(kube)
}

/// A quantity argument: its milli-units and whether it was written with a binary suffix.
fn quantity_arg(position: usize, value: &LuaValue) -> mlua::Result<(i128, bool)> {
    match value {
        LuaValue::Nil => Ok((0, false)),
        LuaValue::String(s) => {
            let text = s.to_str()?.to_owned();
            let milli = quantity::parse_milli(&text).ok_or_else(|| {
                mlua::Error::runtime(format!("argument #{position}: {text:?} is not a quantity"))
            })?;
            Ok((milli, text.trim_end().ends_with('i')))
        }
        other => Err(mlua::Error::runtime(format!(
            "argument #{position}: a quantity string expected, got {}",
            other.type_name()
        ))),
    }
}

fn resource_add(_: &Lua, args: mlua::MultiValue) -> mlua::Result<String> {
    let mut total: i128 = 0;
    let mut binary = None;
    for (i, arg) in args.iter().enumerate() {
        let (milli, is_binary) = quantity_arg(i + 1, arg)?;
        // While the sum is zero, each quantity added sets the format (Kubernetes' Add): the
        // first non-zero one decides.
        if total == 0 && !matches!(arg, LuaValue::Nil) {
            binary = Some(is_binary);
        }
        total = total.saturating_add(milli);
    }
    Ok(quantity::format_canonical(total, binary.unwrap_or(false)))
}

fn resource_quantity(_: &Lua, args: mlua::MultiValue) -> mlua::Result<f64> {
    if args.len() != 1 {
        return Err(mlua::Error::runtime("getResourceQuantity takes one argument"));
    }
    let (milli, _) = quantity_arg(1, &args[0])?;
    if milli < 0 {
        return Err(mlua::Error::runtime("getResourceQuantity: the quantity is negative"));
    }
    Ok(milli as f64 / 1000.0)
}

/// A pod template argument as JSON.
fn template_arg(value: &LuaValue, function: &str) -> mlua::Result<Value> {
    let LuaValue::Table(_) = value else {
        return Err(mlua::Error::runtime(format!(
            "{function}: a pod template table expected, got {}",
            value.type_name()
        )));
    };
    let json = crate::convert::to_json(value).map_err(mlua::Error::runtime)?;
    Ok(crate::convert::restore_empty(json, true, &[]))
}

fn pod_requirements(lua: &Lua, args: mlua::MultiValue) -> mlua::Result<LuaValue> {
    if args.len() != 1 {
        return Err(mlua::Error::runtime("accuratePodRequirements takes one argument"));
    }
    let template = template_arg(&args[0], "accuratePodRequirements")?;
    let requirements = propagation::interpreter::template_requirements(&template);
    let value = serde_json::to_value(&requirements).map_err(mlua::Error::external)?;
    crate::convert::to_lua(lua, &value)
}

fn pod_dependencies(lua: &Lua, args: mlua::MultiValue) -> mlua::Result<LuaValue> {
    if args.len() != 2 {
        return Err(mlua::Error::runtime("getPodDependencies takes two arguments"));
    }
    let template = template_arg(&args[0], "getPodDependencies")?;
    let namespace = match &args[1] {
        LuaValue::Nil => "default".to_owned(),
        LuaValue::String(s) => s.to_str()?.to_owned(),
        LuaValue::Integer(i) => i.to_string(),
        LuaValue::Number(n) => n.to_string(),
        other => {
            return Err(mlua::Error::runtime(format!(
                "getPodDependencies: a namespace string expected, got {}",
                other.type_name()
            )));
        }
    };
    let refs: Vec<Value> = propagation::interpreter::template_dependencies(&template)
        .into_iter()
        .map(|d| {
            json!({"apiVersion": d.api_version, "kind": d.kind, "namespace": namespace, "name": d.name})
        })
        .collect();
    crate::convert::to_lua(lua, &Value::Array(refs))
}

#[cfg(test)]
mod tests {
    use crate::lua::Vm;
    use serde_json::{Value, json};

    fn run(script: &str, args: &[&Value]) -> Result<Value, String> {
        Vm::default().call(script, "test", "F", args, |rets| {
            crate::convert::to_json(rets.first().unwrap_or(&mlua::Value::Nil))
        })
    }

    #[test]
    fn quantities_add_and_read_as_upstream_scripts_expect() {
        let cases = [
            (r#"return kube.resourceAdd("100m", "200m")"#, json!("300m")),
            (r#"return kube.resourceAdd("1", "500m")"#, json!("1500m")),
            (r#"return kube.resourceAdd("1Gi", "1Gi")"#, json!("2Gi")),
            (r#"return kube.resourceAdd("512Mi", nil, "512Mi")"#, json!("1Gi")),
            (r#"return kube.resourceAdd("500", "500")"#, json!("1k")),
            (r#"return kube.resourceAdd(nil)"#, json!("0")),
            (r#"return kube.resourceAdd("0", "1Gi", "500M")"#, json!("1573741824")),
            (r#"return kube.resourceAdd("0", "512Mi", "512Mi")"#, json!("1Gi")),
            (r#"return kube.getResourceQuantity("1500m")"#, json!(1.5)),
            (r#"return kube.getResourceQuantity("2Ki")"#, json!(2048)),
        ];
        for (body, want) in cases {
            let script = format!("local kube = require('kube') function F() {body} end");
            assert_eq!(run(&script, &[]), Ok(want), "{body}");
        }
        let err =
            run("local kube = require('kube') function F() return kube.resourceAdd('x') end", &[])
                .expect_err("not a quantity");
        assert!(err.contains("not a quantity"), "{err}");
    }

    #[test]
    fn pod_templates_give_requirements_and_dependencies() {
        let template = json!({"spec": {
            "nodeSelector": {"disk": "ssd"},
            "serviceAccountName": "runner",
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}},
                "envFrom": [{"configMapRef": {"name": "settings"}}]}],
            "volumes": [{"name": "s", "secret": {"secretName": "creds"}}]}});
        let script = "local kube = require('kube')
            function F(t) return {req = kube.accuratePodRequirements(t), deps = kube.getPodDependencies(t, 'team')} end";
        let got = run(script, &[&template]).expect("runs");
        assert_eq!(
            got["req"],
            json!({"nodeClaim": {"nodeSelector": {"disk": "ssd"}},
                "resourceRequest": {"cpu": "250m", "memory": "64Mi"}})
        );
        assert_eq!(
            got["deps"],
            json!([
                {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "team", "name": "settings"},
                {"apiVersion": "v1", "kind": "Secret", "namespace": "team", "name": "creds"},
                {"apiVersion": "v1", "kind": "ServiceAccount", "namespace": "team", "name": "runner"},
            ])
        );
    }
}
