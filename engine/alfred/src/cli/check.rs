//! `alfred check [PATH] [--database URL]`: validate flows (and the members admins stored
//! over chat) and print every problem, rustc-style.

use std::io::Write;
use std::path::Path;

use alfred_core::check::check_stored_members;
use alfred_core::diag::{Diagnostic, Severity};

use crate::cli::flowdir::FlowDir;
use crate::edges::store::Store;

/// Runs the check and writes the report. Returns the process exit code: 1 if any
/// error was found (or the directory cannot be read), else 0. Warnings never fail.
pub fn run(path: &Path, out: &mut dyn Write) -> std::io::Result<i32> {
    run_with_database(path, None, out)
}

/// [`run`], plus with `database` the members stored there by admins over chat (which
/// win over household.yaml's at run time): the same member rules, and the flows' literal
/// `to:` names against them.
pub fn run_with_database(path: &Path, database: Option<&str>, out: &mut dyn Write) -> std::io::Result<i32> {
    let dir = match FlowDir::read(path) {
        Ok(d) => d,
        Err(e) => {
            writeln!(out, "error: {e}")?;
            return Ok(1);
        }
    };
    let checked = dir.check();
    let mut diagnostics = checked.diagnostics.clone();
    if let Some(url) = database {
        let stored = Store::open(url).and_then(|s| s.members_versioned());
        match (stored, &checked.flows) {
            (Err(e), _) => {
                writeln!(out, "error: cannot read the stored members: {e}")?;
                return Ok(1);
            }
            (Ok(Some(members)), Some(flows)) => diagnostics.extend(check_stored_members(flows, &members)),
            (Ok(None), _) => writeln!(
                out,
                "(no members stored in the database: household.yaml's are in effect)"
            )?,
            (Ok(Some(_)), None) => {}
        }
    }
    let (errors, warnings): (Vec<&Diagnostic>, Vec<&Diagnostic>) =
        diagnostics.iter().partition(|d| d.severity == Severity::Error);
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
