//! `alfred test [PATH]`: run conversation tests, cargo-test style.

use std::io::Write;
use std::path::Path;

use alfred_core::testing::{parse_test_file, run_file};

use crate::cli::flowdir::{FlowDir, LoadError};

/// Runs every test file below `path` (optionally only cases whose name contains
/// `filter`). Returns the exit code: 1 if a case failed or the flows have errors.
pub fn run(path: &Path, filter: Option<&str>, out: &mut dyn Write) -> std::io::Result<i32> {
    let (dir, flows) = match FlowDir::load_checked(path) {
        Ok(loaded) => loaded,
        Err(LoadError::Read(e)) => {
            writeln!(out, "error: {e}")?;
            return Ok(1);
        }
        Err(LoadError::Flows { report, .. }) => {
            if !report.is_empty() {
                writeln!(out, "{report}")?;
            }
            writeln!(out, "the flows have errors; run `alfred check` first")?;
            return Ok(1);
        }
    };
    let mut results = Vec::new();
    let mut broken = 0;
    for f in &dir.tests {
        match parse_test_file(f) {
            Ok(tf) => results.extend(run_file(&flows, &f.path, &tf)),
            Err(d) => {
                broken += 1;
                writeln!(out, "{}", d.render(Some(&f.text)))?;
            }
        }
    }
    if let Some(filter) = filter {
        results.retain(|r| r.name.contains(filter));
    }
    writeln!(out, "\nrunning {} conversation test(s)", results.len())?;
    let mut failed = Vec::new();
    for r in &results {
        let status = if r.failure.is_some() { "FAILED" } else { "ok" };
        writeln!(out, "test {} :: {} ... {status}", r.file, r.name)?;
        if r.failure.is_some() {
            failed.push(r);
        }
    }
    if !failed.is_empty() {
        writeln!(out, "\nfailures:")?;
        for r in &failed {
            writeln!(
                out,
                "\n---- {} :: {} ----\n{}",
                r.file,
                r.name,
                r.failure.as_deref().unwrap_or_default()
            )?;
        }
    }
    let passed = results.len() - failed.len();
    let failed_n = failed.len() + broken;
    writeln!(out, "\n{passed} passed, {failed_n} failed")?;
    Ok(i32::from(failed_n > 0))
}
