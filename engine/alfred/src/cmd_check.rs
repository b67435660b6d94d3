//! `alfred check [PATH]`: validate flows and print every problem, rustc-style.

use std::io::Write;
use std::path::Path;

use alfred_core::diag::{Diagnostic, Severity};

use crate::flowdir::FlowDir;

/// Runs the check and writes the report. Returns the process exit code: 1 if any
/// error was found (or the directory cannot be read), else 0. Warnings never fail.
pub fn run(path: &Path, out: &mut dyn Write) -> std::io::Result<i32> {
    let dir = match FlowDir::read(path) {
        Ok(d) => d,
        Err(e) => {
            writeln!(out, "error: {e}")?;
            return Ok(1);
        }
    };
    let checked = dir.check();
    let (errors, warnings): (Vec<&Diagnostic>, Vec<&Diagnostic>) =
        checked.diagnostics.iter().partition(|d| d.severity == Severity::Error);
    for d in &errors {
        writeln!(out, "{}", d.render(dir.source(&d.file)))?;
    }
    if !warnings.is_empty() {
        writeln!(out, "--- warnings (these do not fail the check) ---\n")?;
        for d in &warnings {
            writeln!(out, "{}", d.render(dir.source(&d.file)))?;
        }
    }
    let flows = dir.flows.len();
    if errors.is_empty() {
        writeln!(out, "ok: {flows} flow file(s), {} warning(s)", warnings.len())?;
        Ok(0)
    } else {
        writeln!(
            out,
            "failed: {} error(s), {} warning(s) in {flows} flow file(s)",
            errors.len(),
            warnings.len()
        )?;
        Ok(1)
    }
}
