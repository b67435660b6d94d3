//! Helpers shared by the test modules.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use alfred::cli::flowdir::FlowDir;
use alfred_core::check::{Checked, SourceFile};
use alfred_core::diag::{Diagnostic, Severity};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The workspace root (where `flows/`, `schema/` and `tests/` live).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A valid household for in-memory checks (members Anna, Ben, Tom; list `shopping`;
/// collection `chores`; template `chore_reminder` with one parameter).
pub const HOUSEHOLD: &str = "\
household:
  name: The Testers
  timezone: Europe/Amsterdam
members:
  - name: Anna
    phone: \"+31612345001\"
    role: admin
  - name: Ben
    phone: \"+31612345002\"
  - name: Tom
    phone: \"+31612345003\"
    role: child
lists: [shopping]
collections:
  chores:
    fields: [title, assignee, done]
templates:
  - name: chore_reminder
    language: en_US
    parameters:
      - name: chore
";

/// A source file.
pub fn src(path: &str, text: impl Into<String>) -> SourceFile {
    SourceFile {
        path: path.to_owned(),
        text: text.into(),
    }
}

/// Checks one flow file against [`HOUSEHOLD`].
pub fn check_flow(text: impl Into<String>) -> Checked {
    let household = src("household.yaml", HOUSEHOLD);
    alfred_core::check::load(Some(&household), &[src("flow.yaml", text)])
}

/// Renders every diagnostic of a check (as `alfred check` would, minus the summary).
pub fn render_all(checked: &Checked, sources: &[&SourceFile]) -> String {
    checked
        .diagnostics
        .iter()
        .map(|d| {
            let text = sources.iter().find(|s| s.path == d.file).map(|s| s.text.as_str());
            d.render(text)
        })
        .collect()
}

/// The errors of a check.
pub fn errors(checked: &Checked) -> Vec<&Diagnostic> {
    checked
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect()
}

/// Renders a checked flow directory exactly like `alfred check` does
/// (`broken_flows` asserts that this matches `alfred::cli::check::run`).
pub fn render_check(dir: &FlowDir) -> (i32, String) {
    let checked = dir.check();
    let (errors, warnings): (Vec<&Diagnostic>, Vec<&Diagnostic>) =
        checked.diagnostics.iter().partition(|d| d.severity == Severity::Error);
    let mut out = Vec::new();
    for d in &errors {
        writeln!(out, "{}", d.render(dir.source(&d.file))).unwrap();
    }
    if !warnings.is_empty() {
        writeln!(out, "--- warnings (these do not fail the check) ---\n").unwrap();
        for d in &warnings {
            writeln!(out, "{}", d.render(dir.source(&d.file))).unwrap();
        }
    }
    let flows = dir.flows.len();
    let code = if errors.is_empty() {
        writeln!(out, "ok: {flows} flow file(s), {} warning(s)", warnings.len()).unwrap();
        0
    } else {
        writeln!(
            out,
            "failed: {} error(s), {} warning(s) in {flows} flow file(s)",
            errors.len(),
            warnings.len()
        )
        .unwrap();
        1
    };
    (code, String::from_utf8(out).unwrap())
}

/// Runs `f` on its own thread and returns its result; fails the test if `f` panics
/// or has not finished after 30 s. The timeout only detects hangs: it is no
/// performance bound (debug builds on a loaded CI machine are slow).
pub fn finishes<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(what.to_owned())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn");
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(v) => {
            let _ = handle.join();
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let cause = handle.join().err().map(|p| panic_text(&*p)).unwrap_or_default();
            panic!("{what}: panicked: {cause}")
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still running after 30 s (hang?)"),
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic)".to_owned())
}

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `alfred-it-<label>-<pid>-<n>`.
    pub fn new(label: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("alfred-it-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies a directory tree (files and folders only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The running service: HTTP, signed bodies, throwaway Postgres databases

/// The app secret the service tests run with.
pub const SECRET: &str = "test-app-secret";

/// A name no other test of this run uses: process, time and a counter.
pub fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}_{nanos}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// One HTTP/1.1 request over a fresh connection: (status, body).
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A webhook body like Meta's text example, from `from`.
pub fn text_webhook(from: &str, wamid: &str, text: &str) -> Vec<u8> {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
            "contacts": [{ "profile": { "name": "Anna" }, "wa_id": from }],
            "messages": [{ "from": from, "id": wamid, "timestamp": "1767600000", "type": "text", "text": { "body": text } }]
        } }] }]
    })
    .to_string()
    .into_bytes()
}

/// The Postgres server the tests use (`ALFRED_TEST_PG_URL`), without a database.
pub fn pg_base() -> String {
    std::env::var("ALFRED_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_owned()
}

/// Runs `sql` on the server's `postgres` database (CREATE/DROP DATABASE).
pub fn pg_admin(sql: &str) {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let mut admin = diesel::PgConnection::establish(&format!("{}/postgres", pg_base()))
        .unwrap_or_else(|e| panic!("PostgreSQL is required for the scale-out test and is not reachable: {e}"));
    admin
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("`{sql}` failed: {e}"));
}
