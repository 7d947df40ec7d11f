#!/usr/bin/env python3
"""Generates crates/kube-protobuf/schema/kube.json: the Kubernetes protobuf wire schema joined
with the JSON shape of the same Go types.

Kubernetes' protobuf messages (`generated.proto`) and its JSON (the Go structs' `json` tags) are
two encodings of one Go type. The .proto files give field numbers and wire types; only the Go
structs say what the JSON looks like: a field's JSON name, whether it is `omitempty`, whether it
is a pointer (a zero value is meaningful), and whether an embedded struct is `inline` (its
fields appear in the parent's JSON object). This script reads both from a source tree of the
Kubernetes API modules (k8s.io/api, k8s.io/apimachinery, k8s.io/apiextensions-apiserver,
k8s.io/metrics — e.g. a Go module's `vendor/k8s.io`) and writes one JSON document:

  {"source": "...",
   "messages": {"<proto full name>": [[number, "jsonName", "type", "flags"], ...]},
   "kinds": {"<group>/<version>/<Kind>": "<proto full name>"}}

type: a scalar (string, bytes, bool, int32, int64, uint32, uint64, double, float, fixed32,
fixed64, sfixed32, sfixed64, sint32, sint64) or a message full name, or "map:<K>:<V>".
flags: r = repeated, p = pointer (zero values are kept), o = omitempty, i = inline.

Usage: tools/kube-proto-schema.py <dir holding k8s.io/> [out]
"""

import json
import os
import re
import sys

PACKAGES = [
    "k8s.io/apimachinery/pkg/apis/meta/v1",
    "k8s.io/apimachinery/pkg/runtime",
    "k8s.io/apimachinery/pkg/runtime/schema",
    "k8s.io/apimachinery/pkg/util/intstr",
    "k8s.io/apimachinery/pkg/api/resource",
    "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1",
    "k8s.io/metrics/pkg/apis/metrics/v1beta1",
]
# Every GA (and the served beta) API group version of k8s.io/api.
API_VERSIONS = re.compile(r"^v\d+$")

SCALARS = {
    "string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float",
    "fixed32", "fixed64", "sfixed32", "sfixed64", "sint32", "sint64",
}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def parse_proto(path):
    text = strip_comments(open(path).read())
    package = re.search(r"^\s*package\s+([\w.]+)\s*;", text, re.M).group(1)
    messages = {}
    # Top-level messages only (Kubernetes' generated.proto has no nested messages).
    for m in re.finditer(r"\bmessage\s+(\w+)\s*\{([^{}]*)\}", text):
        name, body = m.group(1), m.group(2)
        fields = []
        for f in re.finditer(
            r"(?:(optional|repeated|required)\s+)?(map\s*<\s*([\w.]+)\s*,\s*([\w.]+)\s*>|[\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;",
            body,
        ):
            label, typ, key, val, fname, num = f.groups()
            fields.append(
                {
                    "label": label or "",
                    "type": typ,
                    "map": (key, val) if key else None,
                    "name": fname,
                    "number": int(num),
                }
            )
        messages[name] = fields
    return package, messages


GO_FIELD = re.compile(r"^\s*(?:(\w+(?:\s*,\s*\w+)*)\s+)?([*\[\]\w.]+(?:\[[^\]]*\][*\w.]+)?)\s*`([^`]*)`")


def parse_go_structs(directory):
    """struct name -> {proto field number: {json, omitempty, pointer, inline}}"""
    structs = {}
    for fname in sorted(os.listdir(directory)):
        if not fname.endswith(".go") or fname.endswith("_test.go"):
            continue
        text = open(os.path.join(directory, fname)).read()
        for m in re.finditer(r"^type\s+(\w+)\s+struct\s*\{", text, re.M):
            name = m.group(1)
            depth, i = 1, m.end()
            start = i
            while depth and i < len(text):
                c = text[i]
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                i += 1
            body = text[start : i - 1]
            fields = {}
            if re.search(r"^\s*(?:metav1\.|v1\.)?TypeMeta\s+`json:\",inline", body, re.M):
                fields["typemeta"] = True
            for line in body.split("\n"):
                line = line.split("//")[0] if "`" not in line else line
                fm = GO_FIELD.match(line)
                if not fm:
                    continue
                _names, gotype, tags = fm.groups()
                pm = re.search(r'protobuf:"([^"]*)"', tags)
                if not pm:
                    continue
                parts = pm.group(1).split(",")
                try:
                    number = int(parts[1])
                except (IndexError, ValueError):
                    continue
                jm = re.search(r'json:"([^"]*)"', tags)
                jparts = jm.group(1).split(",") if jm else [""]
                fields[number] = {
                    "json": jparts[0],
                    "omitempty": "omitempty" in jparts[1:] or "omitzero" in jparts[1:],
                    "inline": "inline" in jparts[1:],
                    "pointer": gotype.startswith("*"),
                }
            structs[name] = fields
    return structs


def group_name(directory):
    for fname in ("register.go", "doc.go"):
        path = os.path.join(directory, fname)
        if os.path.exists(path):
            m = re.search(r'GroupName\s*=\s*"([^"]*)"', open(path).read())
            if m:
                return m.group(1)
            m = re.search(r"\+groupName=([\w.]*)", open(path).read())
            if m:
                return m.group(1)
    return None


def main():
    root = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(__file__), "..", "crates", "kube-protobuf", "schema", "kube.json"
    )
    dirs = list(PACKAGES)
    api = os.path.join(root, "k8s.io", "api")
    for group in sorted(os.listdir(api)):
        gdir = os.path.join(api, group)
        if not os.path.isdir(gdir):
            continue
        for version in sorted(os.listdir(gdir)):
            if API_VERSIONS.match(version) and os.path.exists(
                os.path.join(gdir, version, "generated.proto")
            ):
                dirs.append(f"k8s.io/api/{group}/{version}")

    parsed = {}  # package -> (dir, messages, structs)
    for d in dirs:
        full = os.path.join(root, d)
        package, messages = parse_proto(os.path.join(full, "generated.proto"))
        parsed[package] = (d, messages, parse_go_structs(full))

    known = {f"{pkg}.{m}" for pkg, (_, msgs, _) in parsed.items() for m in msgs}

    def resolve(typ, package):
        if typ in SCALARS:
            return typ
        t = typ.lstrip(".")
        if t in known:
            return t
        if f"{package}.{t}" in known:
            return f"{package}.{t}"
        raise SystemExit(f"unknown type {typ} in {package}")

    schema = {}
    for package, (d, messages, structs) in sorted(parsed.items()):
        for name, fields in sorted(messages.items()):
            go = {k: v for k, v in structs.get(name, {}).items() if k != "typemeta"}
            rows = []
            for f in sorted(fields, key=lambda f: f["number"]):
                info = go.get(f["number"])
                flags = ""
                if f["map"]:
                    typ = "map:%s:%s" % (resolve(f["map"][0], package), resolve(f["map"][1], package))
                else:
                    typ = resolve(f["type"], package)
                    if f["label"] == "repeated":
                        flags += "r"
                if info:
                    json_name = info["json"]
                    if info["pointer"]:
                        flags += "p"
                    if info["omitempty"]:
                        flags += "o"
                    if info["inline"]:
                        flags += "i"
                else:
                    json_name = f["name"]
                    flags += "o"
                if not json_name and "i" not in flags:
                    json_name = f["name"]
                rows.append([f["number"], json_name, typ, flags])
            schema[f"{package}.{name}"] = rows

    kinds = {}
    for package, (d, messages, structs) in sorted(parsed.items()):
        if not d.startswith("k8s.io/api/") and not any(
            x in d for x in ("apiextensions", "metrics", "apis/meta/v1")
        ):
            continue
        group = group_name(os.path.join(root, d))
        if group is None:
            continue
        version = d.rsplit("/", 1)[1]
        for name in sorted(messages):
            if structs.get(name, {}).get("typemeta"):
                kinds[f"{group}/{version}/{name}"] = f"{package}.{name}"

    with open(out, "w") as fh:
        json.dump(
            {
                "source": "Kubernetes API types: generated.proto joined with the Go structs' json tags (tools/kube-proto-schema.py)",
                "messages": schema,
                "kinds": kinds,
            },
            fh,
            separators=(",", ":"),
            sort_keys=True,
        )
        fh.write("\n")
    print(f"{len(schema)} messages, {len(kinds)} kinds -> {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main()
