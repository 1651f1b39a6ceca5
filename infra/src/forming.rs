//! Setting up JetStream streams and buckets while a NATS cluster forms. A cluster that has just
//! started (or is busy electing a meta leader) answers "no suitable peers for placement" or not at
//! all for a while, and several nodes starting together race to create the same stream: each
//! set-up step is retried for up to a minute before the node gives up with the last error.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// How long a set-up step is retried.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Runs `attempt` until it succeeds or `patience` has passed, logging each failure with `what`.
pub async fn patiently<T, E: Display>(
    what: &str,
    patience: Duration,
    mut attempt: impl AsyncFnMut() -> Result<T, E>,
) -> Result<T, E> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if started.elapsed() + pause < patience => {
                tracing::warn!(%error, "{what} not ready yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_step_that_fails_a_few_times_succeeds() {
        let mut failures = 3;
        let result = patiently("step", Duration::from_secs(10), async || {
            if failures > 0 {
                failures -= 1;
                Err("not yet")
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(result, Ok(7));
        assert_eq!(failures, 0);
    }

    #[tokio::test]
    async fn a_step_that_keeps_failing_gives_the_last_error_after_the_patience() {
        let started = Instant::now();
        let mut attempts = 0;
        let result: Result<(), String> =
            patiently("step", Duration::from_millis(500), async || {
                attempts += 1;
                Err(format!("attempt {attempts}"))
            })
            .await;
        assert_eq!(result, Err(format!("attempt {attempts}")));
        assert!(attempts >= 2, "{attempts}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
