//! The committed JSON Schemas (`schema/*.schema.json`, used by editors through the
//! `# yaml-language-server: $schema=` comment) must be exactly what the model types
//! generate, and every shipped YAML file must point at its schema. The docs' quote of a
//! shipped flow must not drift either.

use std::path::Path;

use crate::support::root;

#[test]
fn committed_schemas_match_the_model() {
    let all = alfred_core::schema::all();
    assert_eq!(all.len(), 3, "flow, household and test schemas");
    for (name, json) in all {
        let path = root().join("schema").join(name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{} is missing ({e}); run `cargo run -- schema` to regenerate the schemas",
                path.display()
            )
        });
        assert!(
            on_disk == json,
            "schema/{name} is out of date with the model types; run `cargo run -- schema` to regenerate it"
        );
        // Sanity: valid JSON, draft-07, titled.
        let v: serde_json::Value = serde_json::from_str(&json).expect("schema is JSON");
        assert_eq!(v["$schema"], "http://json-schema.org/draft-07/schema#", "{name}");
        assert!(
            v["title"].as_str().is_some_and(|t| t.starts_with("Alfred-Home")),
            "{name}"
        );
    }
}

#[test]
fn no_stale_schema_files() {
    let names: Vec<&str> = alfred_core::schema::all().iter().map(|(n, _)| *n).collect();
    for entry in std::fs::read_dir(root().join("schema")).expect("schema/ exists") {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".schema.json") {
            assert!(
                names.contains(&name.as_str()),
                "schema/{name} is no longer generated; delete it or run `cargo run -- schema`"
            );
        }
    }
}

/// The `$schema=` target of a file's first line, if it has the modeline.
fn modeline(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let first = text.lines().next()?;
    first
        .strip_prefix("# yaml-language-server: $schema=")
        .map(|s| s.trim().to_owned())
}

fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn shipped_yaml_files_declare_their_schema() {
    let flows = root().join("flows");
    let mut checked = 0;
    let mut problems = Vec::new();
    let mut check = |path: &Path, expected: &str| {
        checked += 1;
        match modeline(path) {
            None => problems.push(format!(
                "{}: first line must be `# yaml-language-server: $schema=<relative path>/{expected}`",
                path.display()
            )),
            Some(target) => {
                let resolved = path.parent().unwrap().join(&target);
                if !target.ends_with(expected) || !resolved.is_file() {
                    problems.push(format!(
                        "{}: $schema={target} should be a relative path to schema/{expected}",
                        path.display()
                    ));
                }
            }
        }
    };
    for path in yaml_files(&flows) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let expected = match name.as_str() {
            "household.yaml" | "household.yml" => "household.schema.json",
            n if n.ends_with(".test.yaml") || n.ends_with(".test.yml") => "flow-test.schema.json",
            _ => "flow.schema.json",
        };
        check(&path, expected);
    }
    let tests = flows.join("tests");
    if tests.is_dir() {
        for path in yaml_files(&tests) {
            check(&path, "flow-test.schema.json");
        }
    }
    assert!(checked >= 2, "flows/ should hold household.yaml and at least one flow");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The walkthrough in docs/flows.md ("Writing a new skill with YAML alone") quotes
/// flows/car.yaml whole: the quote must stay the shipped flow (comments aside), or the
/// guide teaches something that is not what runs.
#[test]
fn the_docs_walkthrough_quotes_the_shipped_car_flow() {
    let doc = std::fs::read_to_string(root().join("docs/flows.md")).unwrap();
    let start = doc
        .find("```yaml\n# flows/car.yaml\n")
        .expect("docs/flows.md quotes flows/car.yaml")
        + 8;
    let end = start + doc[start..].find("```\n").expect("the quote ends");
    let shipped = std::fs::read_to_string(root().join("flows/car.yaml")).unwrap();
    let code = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|l| l.trim_end().to_owned())
            .collect()
    };
    assert_eq!(
        code(&doc[start..end]),
        code(&shipped),
        "docs/flows.md's quote of flows/car.yaml drifted"
    );
}
