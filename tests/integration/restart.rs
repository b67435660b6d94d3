//! The real `alfred serve` binary on its embedded default, as a new user runs it from
//! the README: start, talk, stop, start again, talk again. Restarts are where the
//! console demo broke (issue 11, defect 1): every process numbered its console wamids
//! from 1, so after a restart `mark_sent` hit the unique wamid index and the reply was
//! never marked sent (printed again on every claim expiry, blocking later replies).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use alfred::edges::store::{OutboxStatus, Store};

use crate::support::{TempDir, copy_dir, root};

/// How long one step may take before the test fails (a failure, not a timing assertion).
const STEP: Duration = Duration::from_secs(30);

/// A running `alfred serve`, killed when dropped; its stdout lines arrive on `lines`.
struct Serve {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Serve {
    fn start(dir: &Path, port: u16) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_alfred"))
            .arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ALFRED_INSECURE_DEV", "1")
            .env("ALFRED_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alfred serve");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let serve = Serve { child, lines };
        let deadline = Instant::now() + STEP;
        while http(port, "GET", "/readyz", "") != Some(200) {
            assert!(Instant::now() < deadline, "alfred serve did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        serve
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

    /// SIGTERM, as Docker and systemd stop it, and wait for the exit.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "alfred serve exited with {exit}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request; the status code, or `None` if nothing listens yet.
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<u16> {
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

fn text_from(phone: &str, wamid: &str, text: &str) -> String {
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

fn free_port() -> u16 {
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
