//! Crest's infrastructure: journal and bus adapters, the HTTP/WebSocket API, telemetry, and the
//! pieces of the `crest` binary.

pub mod access;
pub mod brain_adapter;
pub mod bus;
pub mod channels;
pub mod cluster;
pub mod demo;
mod directory;
pub mod evaluate;
pub mod forming;
pub mod http;
pub mod intents;
pub mod journal;
pub mod knowledge;
pub mod leads;
pub mod logging;
pub mod proactive;
pub mod projections;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod vault;
