//! `crest-loadtest`: an open-loop load generator for Crest over its real HTTP and WebSocket API.
//!
//! Virtual customers send multi-turn scripts (Chinese and English: order status with a follow-up
//! order number, refunds, knowledge-base questions, angry complaints that hand off) at the rates of
//! a profile (baseline → ramp → peak → cool-down); WebSocket followers time the bot's replies;
//! virtual agents take the handed-off chats; at the end every conversation is read back to count
//! lost and duplicated messages. See `loadtest/README.md`.

pub mod loss;
pub mod plot;
pub mod profile;
pub mod report;
pub mod run;
pub mod schedule;
pub mod scripts;
pub mod stats;

pub use profile::{Phase, Profile};
pub use report::{Report, Verdict};
pub use run::{RunConfig, RunError, run};

/// A run id unique enough to keep runs against the same node apart: `lt` and the current time in
/// milliseconds, in hex.
#[must_use]
pub fn new_run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    format!("lt{millis:x}")
}
