//! `alfred-core` is the pure flow core: no runtime, database, cache or HTTP crate may
//! reach it, neither named in its manifest nor pulled in transitively. And the product
//! (`alfred`) carries no test fake: the fake Graph API is a dev-dependency only.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::root;

const FORBIDDEN: &[&str] = &[
    "tokio",
    "diesel",
    "diesel_migrations",
    "redis",
    "hyper",
    "hyper-util",
    "reqwest",
    "axum",
];

/// Names of every dependency a manifest table declares (honouring `package = ` renames).
fn dep_names(table: Option<&toml::Value>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(toml::Value::Table(t)) = table {
        for (key, spec) in t {
            out.insert(key.replace('_', "-"));
            if let Some(pkg) = spec.get("package").and_then(toml::Value::as_str) {
                out.insert(pkg.replace('_', "-"));
            }
        }
    }
    out
}

fn forbidden(name: &str) -> bool {
    FORBIDDEN.iter().any(|f| f.replace('_', "-") == name.replace('_', "-"))
}

#[test]
fn manifest_names_no_io_crate() {
    let text = std::fs::read_to_string(root().join("engine/core/Cargo.toml")).expect("core manifest");
    let manifest: toml::Table = text.parse().expect("core manifest is TOML");
    let mut names = BTreeSet::new();
    for key in ["dependencies", "build-dependencies"] {
        names.extend(dep_names(manifest.get(key)));
    }
    // Platform-specific dependencies count too.
    if let Some(toml::Value::Table(targets)) = manifest.get("target") {
        for spec in targets.values() {
            names.extend(dep_names(spec.get("dependencies")));
            names.extend(dep_names(spec.get("build-dependencies")));
        }
    }
    assert!(
        names.contains("serde-saphyr"),
        "sanity: the manifest was read: {names:?}"
    );
    let bad: Vec<&String> = names.iter().filter(|n| forbidden(n)).collect();
    assert!(bad.is_empty(), "alfred-core must stay pure, but depends on {bad:?}");
}

/// Every crate `package` pulls in along the `edges` kinds (`cargo tree -e`).
fn resolved_tree(package: &str, edges: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .current_dir(root())
        .args(["tree", "-p", package, "-e", edges, "--prefix", "none"])
        .output()
        .expect("run cargo tree");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn resolved_tree_has_no_io_crate() {
    let crates = resolved_tree("alfred-core", "normal");
    let crates: BTreeSet<&str> = crates.iter().map(String::as_str).collect();
    assert!(
        crates.contains("alfred-core") && crates.contains("minijinja"),
        "sanity: the tree was read: {crates:?}"
    );
    let bad: Vec<&&str> = crates.iter().filter(|c| forbidden(c)).collect();
    assert!(
        bad.is_empty(),
        "alfred-core pulls in {bad:?} (see `cargo tree -p alfred-core -i <crate>`)"
    );
}

#[test]
fn the_product_does_not_depend_on_the_fake_graph() {
    let crates = resolved_tree("alfred", "normal,build");
    let crates: BTreeSet<&str> = crates.iter().map(String::as_str).collect();
    assert!(
        crates.contains("alfred") && crates.contains("alfred-core"),
        "sanity: the tree was read: {crates:?}"
    );
    assert!(
        !crates.contains("alfred-fake-graph"),
        "the product must not ship the fake Graph API: {crates:?}"
    );
}
