//! Ctrl-C (SIGINT) and SIGTERM ask a command to stop cleanly; a second one ends the process at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

pub fn stop_on_signals(stop: Arc<AtomicBool>) -> Result<()> {
    ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping: flushing what is in flight (signal again to abort)");
    })
    .context("installing the signal handler")
}
