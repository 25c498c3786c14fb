//! Graceful shutdown: a token that is cancelled on SIGTERM, SIGINT or SIGHUP, passed down to
//! every long-running task.

use tokio_util::sync::CancellationToken;

/// A token cancelled when the process receives SIGTERM, SIGINT or SIGHUP.
pub fn on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::error!("Cannot install signal handlers.");
            return;
        };
        let name = tokio::select! {
            _ = term.recv() => "Terminated",
            _ = int.recv() => "Interrupt",
            _ = hup.recv() => "Hangup",
        };
        tracing::warn!("Received \"{name}\" signal. Shutting down...");
        cancel.cancel();
    });
    token
}
