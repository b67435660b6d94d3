//! `fake-graph`: runs the fake Graph API on a fixed address for the load scripts in
//! `engine/load/` (see `run.sh`). Argument parsing only; the server is the library.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// A fake WhatsApp Graph API for load tests: accepts sends like Meta does and prints
/// `<unix ms> <requests> <sends>` whenever the counts change. Not for production.
#[derive(Parser)]
#[command(name = "fake-graph", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18090")]
    addr: SocketAddr,
    /// Bearer token to accept.
    #[arg(long, default_value = alfred_fake_graph::TOKEN)]
    token: String,
    /// How often to print `<unix ms> <requests> <sends>` when the counts changed.
    #[arg(long, default_value_t = 10)]
    report_ms: u64,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(alfred_fake_graph::run_standalone(
        args.addr,
        &args.token,
        Duration::from_millis(args.report_ms.max(1)),
        std::io::stdout(),
        // No shutdown of its own: the load script stops it with SIGTERM, whose default
        // action ends the process, and every report line is already flushed.
        std::future::pending::<()>(),
    ))
}
