//! Log lines on stderr; the level comes from RUST_LOG (default `info`). `lgsp run`
//! follows its configuration's `log` section (text or JSON lines, a default filter).

use lgsp_core::config::{LogConfig, LogFormat};

/// As `log` says; `RUST_LOG` still wins over `log.level`.
pub fn init_with(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::try_new(log.level.as_deref().unwrap_or("info"))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    });
    match log.format {
        LogFormat::Text => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false)
                .try_init();
        }
        LogFormat::Json => {
            let _ = tracing_subscriber::fmt()
                .json()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_current_span(true)
                .with_span_list(false)
                .try_init();
        }
    }
}

/// Text lines, the level from `RUST_LOG` (default `info`): every command but `run`.
pub fn init() {
    init_with(&LogConfig::default());
}
