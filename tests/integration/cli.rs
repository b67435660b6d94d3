//! The real `alfred` binary, as an admin runs it.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use crate::support::{TempDir, copy_dir, root};

fn alfred(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_alfred"));
    cmd.current_dir(root())
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run alfred");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    let Output { status, stdout, stderr } = child.wait_with_output().expect("wait for alfred");
    (
        status.code().expect("exited normally"),
        String::from_utf8(stdout).expect("utf-8 stdout"),
        String::from_utf8(stderr).expect("utf-8 stderr"),
    )
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default()
}

fn is_summary(line: &str, failed: &str) -> bool {
    line.strip_suffix(&format!(" passed, {failed} failed"))
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

#[test]
fn check_shipped_flows_passes() {
    let (code, out, err) = alfred(&["check", "flows"], None);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(last_line(&out).starts_with("ok: "), "{out}");
    assert!(!out.contains("error["), "{out}");
}

#[test]
fn check_broken_fixtures_fails_errors_first() {
    let (code, out, _) = alfred(&["check", "tests/fixtures/broken"], None);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let sep = lines
        .iter()
        .position(|l| l.starts_with("--- warnings"))
        .expect("a warnings section");
    let first_error = lines.iter().position(|l| l.starts_with("error[")).expect("errors");
    let last_error = lines.iter().rposition(|l| l.starts_with("error[")).unwrap();
    let first_warning = lines.iter().position(|l| l.starts_with("warning[")).expect("warnings");
    assert!(
        first_error < sep && last_error < sep,
        "every error comes before the warnings"
    );
    assert!(first_warning > sep, "every warning comes after the separator");
    assert!(last_line(&out).starts_with("failed: "), "{out}");
    // file:line:col locations are printed.
    assert!(
        out.contains("--> tests/fixtures/broken/unknown_step.yaml:6:11"),
        "{out}"
    );
}

#[test]
fn check_missing_directory_fails_clearly() {
    let (code, out, err) = alfred(&["check", "no/such/dir"], None);
    assert_eq!(code, 1);
    assert!(format!("{out}{err}").contains("cannot read no/such/dir"), "{out}{err}");
}

#[test]
fn test_shipped_flows_passes() {
    let (code, out, err) = alfred(&["test", "flows"], None);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(is_summary(last_line(&out), "0"), "last line: {:?}", last_line(&out));
}

const FAILING_TEST: &str = "\
tests:
  - name: expects the wrong reply
    steps:
      - user: add milk
      - bot: Added bread. The list has 1 item.
  - name: expects the right reply
    steps:
      - user: add milk
      - bot: Added milk. The list has 1 item.
";

#[test]
fn test_with_a_failing_case_fails_with_a_diff() {
    let tmp = TempDir::new("flows-copy");
    let flows = tmp.path().join("flows");
    copy_dir(&root().join("flows"), &flows);
    std::fs::create_dir_all(flows.join("tests")).unwrap();
    std::fs::write(flows.join("tests/zz_deliberately_failing.test.yaml"), FAILING_TEST).unwrap();
    let (code, out, err) = alfred(&["test", flows.to_str().unwrap()], None);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("expects the wrong reply ... FAILED"), "{out}");
    assert!(out.contains("expects the right reply ... ok"), "{out}");
    assert!(out.contains("message text differs"), "{out}");
    assert!(
        out.contains("  - Added bread. The list has 1 item."),
        "expected line in the diff:\n{out}"
    );
    assert!(
        out.contains("  + Added milk. The list has 1 item."),
        "actual line in the diff:\n{out}"
    );
    assert!(is_summary(last_line(&out), "1"), "last line: {:?}", last_line(&out));
    // --filter narrows the run to the matching case.
    let (code, out, _) = alfred(&["test", flows.to_str().unwrap(), "--filter", "right reply"], None);
    assert_eq!(code, 0, "{out}");
    assert_eq!(last_line(&out), "1 passed, 0 failed");
    drop(tmp);
}

#[test]
fn shell_replies_to_piped_messages() {
    let (code, out, err) = alfred(&["shell", "flows", "--as", "Anna"], Some("add milk\nlist\n"));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    // One reply per message; a reply may span several lines.
    let replies: Vec<&str> = out.split("Alfred: ").skip(1).collect();
    assert_eq!(replies.len(), 2, "{out}");
    assert!(replies[0].to_lowercase().contains("added milk"), "{out}");
    assert!(replies[1].contains("milk"), "the list reply shows milk:\n{out}");
}

#[test]
fn shell_as_unknown_member_fails_clearly() {
    let (code, out, err) = alfred(&["shell", "--as", "Nobody"], Some(""));
    assert_ne!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("no member named `Nobody`"), "{all}");
    assert!(all.contains("Anna"), "the message lists the members: {all}");
}

#[test]
fn shell_refuses_broken_flows() {
    let (code, out, err) = alfred(&["shell", "tests/fixtures/broken", "--as", "Anna"], Some("hi\n"));
    assert_eq!(code, 1);
    assert!(err.contains("the flows have errors"), "{err}");
    assert!(out.contains("error["), "the errors are shown: {out}");
}

/// Every skill answers in the shell, on a clock fixed with `--at` (so the times in the
/// replies are known): groceries, chores, a reminder firing after `/advance`, the car
/// log, the briefing opt-out, help in Dutch for Tom and the unhappy path's Help button.
#[test]
fn shell_runs_every_skill_on_a_fixed_clock() {
    let script = "add milk, eggs and 2 bread pls\nnew chore\ndishes\nme\ntoday 18:00\nno\n\
                  remind me in 20 minutes to check the oven\n/advance 20m\nI take the car to work\n\
                  who has the car?\nstop briefing\n/as Tom\nblorp\n1\n";
    let (code, out, err) = alfred(
        &["shell", "flows", "--as", "Ben", "--at", "2026-01-05 09:00"],
        Some(script),
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let expected = [
        "Alfred: Added milk, eggs and 2 × bread. The list has 3 items.",
        "Alfred: Added chore \"dishes\" for Ben, due Mon 18:00.",
        "Alfred: OK, I'll remind you Mon 05 Jan at 09:20: check the oven",
        "(clock: Mon 2026-01-05 09:20 CET)",
        "Alfred: ⏰ Reminder: check the oven",
        "Alfred: Ben has the car since Mon 09:20 (work).",
        "Alfred: OK, no more morning briefings. Say \"start briefing\" to get them again.",
        "(you are now Tom)",
        "Alfred: Sorry, dat begreep ik niet. Probeer \"zet melk op de lijst\", \"lijst\" of \"mijn klusjes\".",
        "  1) Hulp",
        "Alfred: Dit kan ik:",
    ];
    let lines: Vec<&str> = out.lines().collect();
    let mut at = 0;
    for want in expected {
        match lines[at..].iter().position(|l| *l == want) {
            Some(i) => at += i + 1,
            None => panic!("expected, in this order, `{want}` after line {at} of:\n{out}"),
        }
    }
}

#[test]
fn shell_with_a_bad_start_time_fails_clearly() {
    let (code, out, err) = alfred(&["shell", "flows", "--at", "next tuesday"], Some(""));
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("--at: `next tuesday` is not a time"), "{err}");
}

/// The README's scripted shell transcripts (`$ printf '…' | cargo run -q -- shell …`) are
/// real: each is replayed through the binary and must print exactly what the README shows.
#[test]
fn the_readme_transcripts_replay_exactly() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut replayed = 0;
    for block in readme.split("```text\n").skip(1) {
        let block = &block[..block.find("```").expect("the block ends")];
        let Some(rest) = block.strip_prefix("$ printf '") else {
            continue;
        };
        // The command may continue on the next line after a backslash.
        let (script, rest) = rest.split_once('\'').expect("printf's argument ends");
        let (command, output) = rest.split_once('\n').map_or((rest, ""), |(c, o)| {
            if c.trim_end().ends_with('\\') {
                o.split_once('\n').map_or((o, ""), |(c2, o2)| (c2, o2))
            } else {
                (c, o)
            }
        });
        let args_text = command.split("cargo run -q -- ").nth(1).expect("a cargo run line");
        let args = shell_words(args_text);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = alfred(&args, Some(&script.replace("\\n", "\n")));
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, output, "README transcript for `{args_text}` drifted");
        replayed += 1;
    }
    assert!(replayed >= 2, "the README has scripted transcripts ({replayed} found)");
}

/// Splits a command line on spaces, keeping "double-quoted" words together.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.trim().chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The product binary carries no test tool: the fake Graph API lives in the dev-only
/// `alfred-fake-graph` crate, so neither `--help` nor an unknown-command run knows it.
#[test]
fn the_product_binary_has_no_fake_graph_command() {
    let (code, out, err) = alfred(&["--help"], None);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("serve"), "help lists the roles:\n{out}");
    assert!(!out.to_lowercase().contains("fake"), "help names a test tool:\n{out}");
    let (code, out, err) = alfred(&["fake-graph", "--addr", "127.0.0.1:0"], None);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("unrecognized subcommand 'fake-graph'"), "stderr:\n{err}");
}

/// Issue 11, defect 10: `--help` documents the environment variables, from the config
/// module's one table.
#[test]
fn help_lists_every_environment_variable() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["worker", "--help"],
        &["scheduler", "--help"],
    ] {
        let (code, out, err) = alfred(args, None);
        assert_eq!(code, 0, "{args:?}: {err}");
        for v in alfred::config::VARIABLES {
            assert!(out.contains(v.name), "{args:?}: {} missing from:\n{out}", v.name);
        }
    }
}

#[test]
fn shell_on_a_missing_directory_names_the_cause_once() {
    let (code, out, err) = alfred(&["shell", "no-such-flows", "--as", "Anna"], Some("hi\n"));
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.starts_with("error: cannot read no-such-flows: "), "stderr:\n{err}");
    assert_eq!(err.matches("os error").count(), 1, "the cause is repeated:\n{err}");
}

/// `alfred migrate` on the embedded default: the first run applies every migration,
/// the second finds nothing to do (a second start, as operators do it).
#[test]
fn migrate_applies_once_then_is_up_to_date() {
    let tmp = TempDir::new("migrate");
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_alfred"))
            .current_dir(tmp.path())
            .env_remove("DATABASE_URL")
            .arg("migrate")
            .output()
            .expect("run alfred migrate");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    std::fs::create_dir_all(tmp.path().join("data")).expect("data dir");
    let (code, out, err) = run();
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let shipped = std::fs::read_dir(root().join("schema/migrations/sqlite"))
        .expect("migrations")
        .count();
    assert!(shipped > 0, "sanity: the migrations were found");
    assert!(
        out.starts_with(&format!("applied {shipped} migration(s): ")),
        "stdout:\n{out}"
    );
    assert!(
        tmp.path().join("data/alfred.db").exists(),
        "the embedded database was not created"
    );
    let (code, out, err) = run();
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(out, "database is up to date\n");
}
