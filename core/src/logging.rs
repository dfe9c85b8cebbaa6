//! Log set-up of both programs: structured logs on stderr, filtered by
//! `RUST_LOG` (default `info`), JSON lines with `BAY_LOG_FORMAT=json`.

/// Installs the global subscriber.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a terminal: logs sent to a file or a journal
    // stay plain text that grep and log shippers can read.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("BAY_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
