//! The `alfred` binary: argument parsing and the signal handler only; the commands
//! live in the library (`alfred::cli`).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

/// Alfred-Home: a declarative workflow engine for a family WhatsApp assistant.
#[derive(Parser, Debug)]
#[command(name = "alfred", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate flows: every problem with file:line:col and a hint. Exit 1 on errors.
    Check {
        /// Flows directory (or one flow file).
        #[arg(default_value = "flows")]
        path: PathBuf,
        /// Also check the members admins stored over chat in this database (they win
        /// over household.yaml's at run time).
        #[arg(long)]
        database: Option<String>,
    },
    /// Run conversation tests (*.test.yaml and tests/) on a virtual clock.
    Test {
        /// Flows directory.
        #[arg(default_value = "flows")]
        path: PathBuf,
        /// Only run cases whose name contains this.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Chat with the flows in the console as a household member.
    Shell {
        /// Flows directory.
        #[arg(default_value = "flows")]
        path: PathBuf,
        /// Member to chat as (default: the first member).
        #[arg(long = "as")]
        member: Option<String>,
        /// Start the virtual clock here instead of now, as in a test case's `at:`
        /// ("2026-01-05 09:00", in the household's timezone, or with a zone after it).
        #[arg(long)]
        at: Option<String>,
    },
    /// Run every role in one process: webhook, worker, sender and scheduler (migrates first).
    Serve,
    /// Run only the webhook role.
    Webhook,
    /// Run only the worker role.
    Worker,
    /// Run only the sender role.
    Sender,
    /// Run only the scheduler role (schedules and durable timers).
    Scheduler,
    /// Apply the database migrations (DATABASE_URL, default: the embedded SQLite file).
    Migrate,
    /// Write the JSON Schemas of the flow, household and test files.
    Schema {
        /// Directory to write into.
        #[arg(default_value = "schema")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// The command line, with the environment variables table after `--help` of the
/// service commands (and of `alfred` itself).
fn parse() -> Cli {
    let table = alfred::config::help_table();
    let mut cmd = Cli::command().after_help(table.clone());
    for role in ["serve", "webhook", "worker", "sender", "scheduler"] {
        let table = table.clone();
        cmd = cmd.mut_subcommand(role, move |c| c.after_help(table));
    }
    match Cli::from_arg_matches(&cmd.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    }
}

fn run() -> anyhow::Result<i32> {
    let cli = parse();
    // The service roles log to stdout from many threads: never hold the stdout lock
    // across them (that deadlocks every task that logs).
    let roles = match cli.command {
        Command::Serve => Some(alfred::cli::serve::Roles::ALL),
        Command::Webhook => Some(alfred::cli::serve::Roles {
            webhook: true,
            worker: false,
            sender: false,
            scheduler: false,
        }),
        Command::Worker => Some(alfred::cli::serve::Roles {
            webhook: false,
            worker: true,
            sender: false,
            scheduler: false,
        }),
        Command::Sender => Some(alfred::cli::serve::Roles {
            webhook: false,
            worker: false,
            sender: true,
            scheduler: false,
        }),
        Command::Scheduler => Some(alfred::cli::serve::Roles {
            webhook: false,
            worker: false,
            sender: false,
            scheduler: true,
        }),
        _ => None,
    };
    if let Some(roles) = roles {
        let role = match cli.command {
            Command::Serve => "serve",
            Command::Webhook => "webhook",
            Command::Worker => "worker",
            Command::Sender => "sender",
            _ => "scheduler",
        };
        return Ok(alfred::cli::start::main(role, roles, shutdown_signal()));
    }
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Check { path, database } => Ok(alfred::cli::check::run_with_database(
            &path,
            database.as_deref(),
            &mut stdout,
        )?),
        Command::Test { path, filter } => Ok(alfred::cli::test::run(&path, filter.as_deref(), &mut stdout)?),
        Command::Shell { path, member, at } => {
            let stdin = std::io::stdin();
            let prompt = stdin.is_terminal();
            Ok(alfred::cli::shell::start(
                &path,
                member.as_deref(),
                at.as_deref(),
                chrono::Utc::now(),
                &mut stdin.lock(),
                &mut stdout,
                prompt,
            )?)
        }
        Command::Serve | Command::Webhook | Command::Worker | Command::Sender | Command::Scheduler => {
            unreachable!("handled above")
        }
        Command::Migrate => {
            let _ = dotenvy::dotenv();
            let url = std::env::var("DATABASE_URL").ok();
            Ok(alfred::cli::migrate::run(url.as_deref(), &mut stdout)?)
        }
        Command::Schema { dir } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (name, json) in alfred_core::schema::all() {
                let p = dir.join(name);
                std::fs::write(&p, json).with_context(|| format!("writing {}", p.display()))?;
                println!("wrote {}", p.display());
            }
            Ok(0)
        }
    }
}
