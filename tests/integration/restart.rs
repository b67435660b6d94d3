//! The real `alfred serve` binary on its embedded default, as a new user runs it from
//! the README: start, talk, stop, start again, talk again. Restarts are where the
//! console demo broke (issue 11, defect 1): every process numbered its console wamids
//! from 1, so after a restart `mark_sent` hit the unique wamid index and the reply was
//! never marked sent (printed again on every claim expiry, blocking later replies).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use alfred::edges::store::{OutboxStatus, Store};

use crate::support::{TempDir, copy_dir, root};

/// How long one step may take before the test fails (a failure, not a timing assertion).
const STEP: Duration = Duration::from_secs(30);

/// A running `alfred` service process, killed when dropped; its stdout lines arrive on
/// `lines`, and every line of stdout and stderr is kept in `log`.
pub(crate) struct Serve {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// How a test runs the binary: the command, the environment beyond the basics, and the
/// port whose `/readyz` says it is up.
pub(crate) struct Run<'a> {
    pub(crate) command: &'a str,
    pub(crate) env: Vec<(&'a str, String)>,
    pub(crate) ready_port: Option<u16>,
}

impl<'a> Run<'a> {
    /// `alfred serve` in development mode on `port`, as the README runs it.
    pub(crate) fn serve(port: u16) -> Run<'a> {
        Run {
            command: "serve",
            env: vec![
                ("ALFRED_INSECURE_DEV", "1".into()),
                ("ALFRED_LISTEN", format!("127.0.0.1:{port}")),
                ("RUST_LOG", "warn".into()),
            ],
            ready_port: Some(port),
        }
    }

    /// Sets (or replaces) one variable.
    pub(crate) fn env(mut self, key: &'a str, value: impl Into<String>) -> Run<'a> {
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Removes one variable.
    pub(crate) fn without(mut self, key: &str) -> Run<'a> {
        self.env.retain(|(k, _)| *k != key);
        self
    }

    fn command(&self, dir: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_alfred"));
        cmd.arg(self.command)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs to the end (a start that must fail): exit code, stdout and stderr lines.
    pub(crate) fn to_exit(&self, dir: &Path) -> (i32, Vec<String>) {
        let out = self.command(dir).stdin(Stdio::null()).output().expect("run alfred");
        let lines = String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
            .map(str::to_owned)
            .collect();
        (out.status.code().unwrap_or(-1), lines)
    }
}

fn keep_lines(
    from: impl std::io::Read + Send + 'static,
    log: Arc<Mutex<Vec<String>>>,
    tx: Option<mpsc::Sender<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            log.lock().expect("log").push(line.clone());
            if let Some(tx) = &tx {
                let _ = tx.send(line);
            }
        }
    })
}

impl Serve {
    fn start(dir: &Path, port: u16) -> Serve {
        Serve::run(dir, Run::serve(port))
    }

    /// Starts `run` in `dir` and waits until its `/readyz` answers 200.
    pub(crate) fn run(dir: &Path, run: Run<'_>) -> Serve {
        let mut child = run
            .command(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start alfred");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        let readers = vec![
            keep_lines(child.stdout.take().expect("stdout"), log.clone(), Some(tx)),
            keep_lines(child.stderr.take().expect("stderr"), log.clone(), None),
        ];
        let serve = Serve {
            child,
            lines,
            log,
            readers,
        };
        if let Some(port) = run.ready_port {
            serve.until(&format!("/readyz on {port} to answer 200"), || {
                http(port, "GET", "/readyz", "") == Some(200)
            });
        }
        serve
    }

    /// Polls `f` until it holds, for at most [`STEP`] (a failure, not a timing assertion).
    pub(crate) fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + STEP;
        while !f() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}",
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every line written so far (stdout, then stderr as it came).
    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// The next console line that contains `needle` (earlier lines are skipped).
    fn console_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with("[whatsapp console]") && l.contains(needle) => return l,
                Ok(_) => {}
                Err(e) => panic!("no console line with {needle:?}: {e}"),
            }
        }
    }

    /// SIGTERM, as Docker and systemd stop it, and wait for the exit; returns the log.
    pub(crate) fn stop(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "alfred exited with {exit}");
        // The reader threads end with the pipes.
        for reader in std::mem::take(&mut self.readers) {
            let _ = reader.join();
        }
        self.log()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request; the status code, or `None` if nothing listens yet.
pub(crate) fn http(port: u16, method: &str, path: &str, body: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) fn text_from(phone: &str, wamid: &str, text: &str) -> String {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"phone_number_id": "1"},
            "contacts": [{"wa_id": phone}],
            "messages": [{"from": phone, "id": wamid, "timestamp": "1", "type": "text", "text": {"body": text}}]
        }}]}]
    })
    .to_string()
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[test]
fn the_embedded_demo_answers_and_marks_sent_after_a_restart() {
    let tmp = TempDir::new("restart");
    copy_dir(&root().join("flows"), &tmp.path().join("flows"));
    std::fs::create_dir_all(tmp.path().join("data")).expect("data dir");
    let port = free_port();
    let anna = "31612345001";

    let serve = Serve::start(tmp.path(), port);
    assert_eq!(
        http(port, "POST", "/webhook", &text_from(anna, "wamid.r1", "add bananas")),
        Some(200)
    );
    serve.console_line("Added bananas");
    serve.stop();

    let serve = Serve::start(tmp.path(), port);
    assert_eq!(
        http(port, "POST", "/webhook", &text_from(anna, "wamid.r2", "list")),
        Some(200)
    );
    serve.console_line("bananas");
    assert_eq!(
        http(port, "POST", "/webhook", &text_from(anna, "wamid.r3", "add milk")),
        Some(200)
    );
    serve.console_line("Added milk");

    // Every reply of both processes is marked sent, each with its own wamid.
    let store = Store::open(&format!("sqlite://{}", tmp.path().join("data/alfred.db").display())).expect("db");
    let deadline = Instant::now() + STEP;
    loop {
        let rows: Vec<_> = (1..)
            .map_while(|id| store.outbox_row(id).expect("outbox row"))
            .collect();
        assert!(rows.len() >= 3, "three replies were committed: {rows:?}");
        if rows.iter().all(|r| r.status == OutboxStatus::Sent) {
            let mut wamids: Vec<_> = rows.iter().map(|r| r.wamid.clone().expect("wamid")).collect();
            wamids.sort();
            wamids.dedup();
            assert_eq!(wamids.len(), rows.len(), "wamids repeat: {rows:?}");
            break;
        }
        assert!(Instant::now() < deadline, "replies not marked sent: {rows:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    serve.stop();
}
