//! The checker: YAML sources → a validated `FlowSet`, or diagnostics.
//!
//! One pass reports every problem it can find (never just the first): syntax errors
//! per file, then semantic checks over everything that parsed. A flow set with any
//! error is not built, so the engine only ever sees flows whose references resolve.

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::diag::{Diagnostic, Severity, sort};
use crate::flow::FlowSet;
use crate::model::{FlowFile, HouseholdFile, Pos};
use crate::tmpl::Templates;

mod actions;
mod asks;
mod build;
mod ctx;
mod flows;
mod graph;
mod greedy;
mod household;
mod languages;
mod sends;
mod shadowing;

use build::build_set;
pub use build::check_stored_members;
use flows::compile_flows;
use household::compile_household;

/// One file handed to the checker.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Path as shown in diagnostics (relative to the flows directory is nicest).
    pub path: String,
    /// Full text.
    pub text: String,
}

/// The result of checking: the flow set if there were no errors, and all diagnostics.
#[derive(Debug)]
pub struct Checked {
    /// The usable flow set, if no error was found.
    pub flows: Option<FlowSet>,
    /// Every problem, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
}

/// Largest accepted file: far above any real flow, small enough to parse instantly.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Steps one `handle` may run without waiting (the loop guard).
pub const MAX_STEPS_PER_EVENT: usize = 100;

/// Parse options that bound the work hostile YAML can cause (alias bombs, deep
/// nesting, huge documents) and reject duplicate keys.
fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 64;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_events = 500_000;
    budget.max_nodes = 250_000;
    budget.max_documents = 1;
    budget.max_total_scalar_bytes = MAX_FILE_BYTES;
    let mut opts = serde_saphyr::Options::default();
    opts.budget = Some(budget);
    opts.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    // YAML 1.2 booleans only: `choice: [yes, no]` and `send: Yes` stay text.
    opts.strict_booleans = true;
    opts.with_snippet = false;
    opts
}

/// Parses one YAML document into `T`, turning failures into a diagnostic.
// Diagnostics are the cold path; boxing them would only add noise at every call site.
#[allow(clippy::result_large_err)]
pub fn parse_yaml<T: DeserializeOwned>(file: &SourceFile) -> Result<T, Diagnostic> {
    if file.text.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::error(
            "file-too-large",
            &file.path,
            Pos::default(),
            format!("file is {} bytes; the limit is {MAX_FILE_BYTES}", file.text.len()),
        )
        .hint("split it into several flow files"));
    }
    if file.text.trim().is_empty() {
        return Err(Diagnostic::error(
            "empty-file",
            &file.path,
            Pos::default(),
            "file is empty",
        ));
    }
    serde_saphyr::from_str_with_options::<T>(&file.text, yaml_options()).map_err(|e| {
        let pos = e
            .location()
            .map(|l| Pos {
                line: u32::try_from(l.line()).unwrap_or(0),
                col: u32::try_from(l.column()).unwrap_or(0),
            })
            .unwrap_or_default();
        let (message, hint) = describe_yaml_error(&e.without_snippet().to_string());
        let mut d = Diagnostic::error("yaml", &file.path, pos, message);
        d.hint = hint;
        d
    })
}

/// serde-saphyr's messages end with " at line L column C"; we show the place ourselves.
/// Adds a hint for the common mistakes.
fn describe_yaml_error(raw: &str) -> (String, Option<String>) {
    let msg = match raw.find(" at line ") {
        Some(i) => raw[..i].to_owned(),
        None => raw.to_owned(),
    };
    // Advice about the YAML library's options is not something an admin can act on.
    let msg = match msg.find(", set DuplicateKeyPolicy") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    };
    let msg = msg.trim().to_owned();
    let hint = if msg.contains("Documents") {
        Some("a file holds one YAML document: remove the `---` separator and put each flow in its own file".to_owned())
    } else if msg.contains("unknown field") {
        Some("check the spelling; docs/flows.md lists every key".to_owned())
    } else if msg.contains("duplicate") {
        Some("each key may appear once per map; remove or rename one".to_owned())
    } else if msg.contains("budget") || msg.contains("alias") || msg.contains("depth") {
        Some("the file is nested too deeply or uses too many aliases".to_owned())
    } else if msg.contains("missing field") {
        Some("add the required key".to_owned())
    } else if msg.starts_with("invalid") || msg.contains("expected") {
        Some("the value has the wrong type here; docs/flows.md shows what each key takes".to_owned())
    } else {
        None
    };
    (msg, hint)
}

/// Checks a set of source files (one `household.yaml` and any number of flow files)
/// and builds the flow set when there is no error.
pub fn load(household: Option<&SourceFile>, flow_files: &[SourceFile]) -> Checked {
    let household_src = household;
    let mut diags = Vec::new();
    let mut sorted: Vec<&SourceFile> = flow_files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));

    let house_def = match household {
        None => {
            diags.push(
                Diagnostic::error(
                    "no-household",
                    "household.yaml",
                    Pos::default(),
                    "no household.yaml found",
                )
                .hint("create household.yaml with `household:` (name, timezone) and `members:`"),
            );
            None
        }
        Some(f) => match parse_yaml::<HouseholdFile>(f) {
            Ok(h) => Some((f, h)),
            Err(d) => {
                diags.push(d);
                None
            }
        },
    };

    let mut parsed: Vec<(&SourceFile, FlowFile)> = Vec::new();
    for f in &sorted {
        match parse_yaml::<FlowFile>(f) {
            Ok(flow) => parsed.push((f, flow)),
            Err(d) => diags.push(d),
        }
    }

    let mut templates = Templates::new();
    let household = house_def.map(|(f, h)| compile_household(f, &h, &mut templates, &mut diags));

    let flows = household
        .as_ref()
        .map(|h| compile_flows(h, &parsed, &mut templates, &mut diags));

    sort(&mut diags);
    let has_errors = diags.iter().any(|d| d.severity == Severity::Error);
    let flow_set = match (household, flows) {
        (Some(household), Some(compiled)) if !has_errors => {
            let mut hasher = Sha256::new();
            if let Some(h) = household_src {
                hasher.update(h.text.as_bytes());
            }
            for f in &sorted {
                hasher.update(f.path.as_bytes());
                hasher.update([0]);
                hasher.update(f.text.as_bytes());
            }
            let version = hex::encode(&hasher.finalize()[..8]);
            Some(build_set(household, compiled, templates, version))
        }
        _ => None,
    };
    Checked {
        flows: flow_set,
        diagnostics: diags,
    }
}
