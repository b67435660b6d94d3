//! `alfred shell`: chat with the flows in a console, as a chosen member, on a virtual
//! clock. Buttons and list rows are numbered; typing the number taps them. When
//! standard input is not a terminal it reads one message per line, so conversations
//! can be scripted: `printf 'add milk\nlist\n' | alfred shell --as Anna`.

use std::io::{BufRead, Write};
use std::path::Path;

use alfred_core::event::{InboundMessage, OutMessage};
use alfred_core::flow::FlowSet;
use alfred_core::parse::parse_duration;
use alfred_core::roster;
use alfred_core::sim::{Produced, Simulator};
use alfred_core::testing::parse_test_time;
use chrono::{DateTime, Utc};

use crate::cli::flowdir::{FlowDir, FlowDirError, LoadError};

const HELP: &str = "commands: /as <member>, /advance <duration>, /state, /trace, /reset, /help, /quit";

/// Why `alfred shell` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The flows directory could not be read. (Its message already names the cause, so
    /// it is not chained again as a source.)
    #[error("{0}")]
    Read(FlowDirError),
    /// The flows have errors (their report was written to the output).
    #[error("the flows have errors; fix them first (`alfred check`)")]
    Flows,
    /// `--at` is not a time.
    #[error("--at: {0}")]
    At(String),
    /// The console failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `alfred shell PATH`: loads and checks the flows below `path`, then runs the shell
/// from `at` (a test-file time in the household's zone) or from `wall_now`. The shell is
/// an edge: it reads the wall clock once (the caller's `wall_now`); after that the
/// virtual clock moves only with /advance.
pub fn start(
    path: &Path,
    member: Option<&str>,
    at: Option<&str>,
    wall_now: DateTime<Utc>,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    prompt: bool,
) -> Result<i32, ShellError> {
    let flows = match FlowDir::load_checked(path) {
        Ok((_, flows)) => flows,
        Err(LoadError::Read(e)) => return Err(ShellError::Read(e)),
        Err(LoadError::Flows { report, .. }) => {
            if !report.is_empty() {
                writeln!(out, "{report}")?;
            }
            return Err(ShellError::Flows);
        }
    };
    let now = match at {
        Some(at) => parse_test_time(at, flows.household.timezone).map_err(|e| ShellError::At(e.to_string()))?,
        None => wall_now,
    };
    Ok(run(&flows, member, now, input, out, prompt)?)
}

/// Runs the shell until end of input or `/quit`. `prompt` shows a prompt (terminals).
pub fn run(
    flows: &FlowSet,
    member: Option<&str>,
    now: DateTime<Utc>,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    prompt: bool,
) -> std::io::Result<i32> {
    let mut me = match member {
        Some(m) => match flows.household.member(m) {
            Some(m) => m.name.clone(),
            None => {
                writeln!(
                    out,
                    "error: no member named `{m}`; members: {}",
                    names(&flows.household.members)
                )?;
                return Ok(1);
            }
        },
        None => match flows.household.members.first() {
            Some(m) => m.name.clone(),
            None => {
                writeln!(out, "error: the household has no members")?;
                return Ok(1);
            }
        },
    };
    let mut sim = Simulator::new(flows, now, Default::default());
    let mut options: Vec<(String, String)> = Vec::new();
    if prompt {
        writeln!(
            out,
            "Alfred shell, household \"{}\". You are {me}. {HELP}",
            flows.household.name
        )?;
    }
    let mut line = String::new();
    loop {
        if prompt {
            write!(out, "{me}> ")?;
            out.flush()?;
        }
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        let text = line.trim_end_matches(['\n', '\r']).trim();
        if text.is_empty() {
            continue;
        }
        let produced = if let Some(cmd) = text.strip_prefix('/') {
            let (name, arg) = cmd.split_once(' ').map_or((cmd, ""), |(a, b)| (a, b.trim()));
            match name {
                "quit" | "exit" => break,
                "help" => {
                    writeln!(out, "{HELP}")?;
                    continue;
                }
                "as" => {
                    // Members an admin added in this session count too.
                    let members = roster::effective(&flows.household, &sim.data);
                    match roster::find(members, arg) {
                        Some(m) => {
                            me = m.name.clone();
                            options.clear();
                            writeln!(out, "(you are now {me})")?;
                        }
                        None => writeln!(out, "(no member `{arg}`; members: {})", names(members))?,
                    }
                    continue;
                }
                "advance" => match parse_duration(arg) {
                    Ok(d) => {
                        let to = sim.now + d;
                        let p = sim.advance_to(to);
                        let tz = flows.household.timezone;
                        writeln!(
                            out,
                            "(clock: {})",
                            sim.now.with_timezone(&tz).format("%a %Y-%m-%d %H:%M %Z")
                        )?;
                        p
                    }
                    Err(e) => {
                        writeln!(out, "({e})")?;
                        continue;
                    }
                },
                "state" => {
                    let st = sim.states.get(&me).cloned().unwrap_or_default();
                    match st.frames.last() {
                        None => writeln!(out, "(idle)")?,
                        Some(f) => writeln!(
                            out,
                            "(flow `{}`, step `{}`{}; slots {}; vars {})",
                            f.flow,
                            f.step,
                            if f.waiting { ", waiting for an answer" } else { "" },
                            serde_json::to_string(&f.slots).unwrap_or_default(),
                            serde_json::to_string(&f.vars).unwrap_or_default()
                        )?,
                    }
                    let timers: Vec<String> = sim
                        .timers
                        .values()
                        .map(|t| format!("{} at {}", t.id, t.fire_at))
                        .collect();
                    if !timers.is_empty() {
                        writeln!(out, "(timers: {})", timers.join(", "))?;
                    }
                    continue;
                }
                "trace" => {
                    for (m, t) in &sim.last_trace {
                        writeln!(out, "  [{m}] {t}")?;
                    }
                    continue;
                }
                "reset" => {
                    sim.states.clear();
                    sim.timers.clear();
                    options.clear();
                    writeln!(out, "(conversations and timers reset)")?;
                    continue;
                }
                _ => {
                    writeln!(out, "(unknown command; {HELP})")?;
                    continue;
                }
            }
        } else if let Some((id, title)) = text
            .parse::<usize>()
            .ok()
            .and_then(|n| options.get(n.wrapping_sub(1)).cloned())
        {
            sim.send(&me, InboundMessage::reply(id, title))
        } else {
            sim.send(&me, InboundMessage::text(text))
        };
        for p in produced {
            match p {
                Produced::Error(e) => writeln!(out, "(flow error: {e})")?,
                Produced::Message(o) => {
                    let who = if o.to == me {
                        "Alfred".to_owned()
                    } else {
                        format!("Alfred → {}", o.to)
                    };
                    writeln!(out, "{who}: {}", o.message.body())?;
                    let choices = o.message.choices();
                    if !choices.is_empty() {
                        if o.to == me {
                            options = choices.iter().map(|c| (c.id.clone(), c.title.clone())).collect();
                        }
                        for (i, c) in choices.iter().enumerate() {
                            writeln!(out, "  {}) {}", i + 1, c.title)?;
                        }
                    }
                    if let OutMessage::List { button, .. } = &o.message {
                        writeln!(out, "  (list: {button})")?;
                    }
                }
            }
        }
    }
    Ok(0)
}

fn names(members: &[alfred_core::flow::Member]) -> String {
    members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
}
