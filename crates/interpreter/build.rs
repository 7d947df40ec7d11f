//! Lists the bundled customizations (`thirdparty/<group>/<Kind>.yaml`) for `src/thirdparty.rs`,
//! so adding a kind is adding its file.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read when run (not when built): a build script binary may be shared between checkouts.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("thirdparty");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    for group in std::fs::read_dir(&root).expect("thirdparty/ exists") {
        let group = group.expect("readable").path();
        println!("cargo:rerun-if-changed={}", group.display());
        if !group.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&group).expect("readable") {
            let file = file.expect("readable").path();
            if file.extension().is_some_and(|e| e == "yaml") {
                files.push(file);
            }
        }
    }
    files.sort();
    let mut out = String::from("&[\n");
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under thirdparty/");
        writeln!(
            out,
            "    ({:?}, include_str!({:?})),",
            relative.display().to_string(),
            file.display().to_string()
        )
        .expect("formatting a string");
    }
    out.push(']');
    let dest = Path::new(&std::env::var("OUT_DIR").expect("set by cargo")).join("bundled.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
