//! The report: a JSON document, a readable table and the one-line JSON summary printed last.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::loss::LossReport;
use crate::profile::Profile;
use crate::stats::{Errors, Latency, SecondPoint, Summary, round3};

/// One phase as planned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseReport {
    /// Its name.
    pub name: String,
    /// Start, seconds from the beginning.
    pub start_s: f64,
    /// Length in seconds.
    pub duration_s: f64,
    /// Rate at the start (messages per second).
    pub from: f64,
    /// Rate at the end (messages per second).
    pub to: f64,
    /// Messages scheduled in it.
    pub arrivals: u64,
}

/// Bot replies of followed conversations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BotReplies {
    /// Replies seen on the followed conversations' WebSockets.
    pub seen: u64,
    /// Of those, timed (their message was posted after the socket opened).
    pub timed: u64,
    /// Of those, not timed (the reply came in the socket's catch-up).
    pub untimed: u64,
    /// Acknowledged messages expecting a reply that got none before the drain ended.
    pub missing: u64,
    /// `conversation.handoff_requested` events seen.
    pub handoffs_seen: u64,
    /// Conversations whose WebSocket could not be opened.
    pub unfollowed_conversations: u64,
}

/// Handoffs and the virtual agents' work.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Handoffs {
    /// Messages asking for a human that were acknowledged.
    pub acked: u64,
    /// Of those, offered to a virtual agent.
    pub offered: u64,
    /// Offers accepted.
    pub accepted: u64,
    /// Offers that could not be accepted (expired, taken).
    pub accept_failed: u64,
    /// Chats resolved by an agent.
    pub resolved: u64,
    /// Chats an agent failed to resolve.
    pub resolve_failed: u64,
}

/// The whole report (`--report` file).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Prefix of this run's ids.
    pub run_id: String,
    /// The node.
    pub target: String,
    /// The tenant.
    pub tenant: String,
    /// Seed of the script choices.
    pub seed: u64,
    /// The profile as run.
    pub profile: Profile,
    /// The phases with their planned arrivals.
    pub phases: Vec<PhaseReport>,
    /// Length of the schedule (s).
    pub schedule_s: f64,
    /// From the start to the last acknowledgement, at least the schedule (s).
    pub elapsed_s: f64,
    /// Messages offered (scheduled arrivals).
    pub offered: u64,
    /// Messages acknowledged.
    pub acked: u64,
    /// Acknowledgements that said `duplicate: true`: expected only for messages tried again on
    /// another node after a first attempt that was stored but not answered.
    pub duplicate_acks: u64,
    /// Messages acknowledged after more than one attempt (several target nodes: a node down, a
    /// shard moving).
    pub retried: u64,
    /// Offered messages per second over the schedule.
    pub offered_msgs_per_s: f64,
    /// Acknowledged messages per second over `elapsed_s`.
    pub achieved_msgs_per_s: f64,
    /// The busiest whole second of offered load.
    pub peak_offered_msgs_per_s: u64,
    /// The busiest whole second of acknowledgements.
    pub peak_achieved_msgs_per_s: u64,
    /// Acknowledgement latency: POST sent → 2xx read.
    pub ack: Summary,
    /// Bot-reply latency: POST sent → its `conversation.bot_replied` on the WebSocket.
    pub bot_reply: Summary,
    /// Handoff message acknowledged → a virtual agent sees the offer (includes queueing).
    pub handoff_to_offer: Summary,
    /// Arrival due → POST started (acknowledged messages): the generator's own delay.
    pub send_lag: Summary,
    /// Bot replies of followed conversations.
    pub bot_replies: BotReplies,
    /// Handoffs and agents.
    pub handoffs: Handoffs,
    /// Errors by kind.
    pub errors: BTreeMap<&'static str, u64>,
    /// Errors of customer messages (all kinds but `websocket` and `agent`).
    pub message_errors: u64,
    /// The read-back.
    pub loss: LossReport,
    /// Per second.
    pub series: Vec<SecondPoint>,
}

/// What [`Report::build`] needs.
#[derive(Debug)]
pub struct Parts<'a> {
    /// See [`Report::run_id`].
    pub run_id: String,
    /// See [`Report::target`].
    pub target: String,
    /// See [`Report::tenant`].
    pub tenant: String,
    /// See [`Report::seed`].
    pub seed: u64,
    /// See [`Report::profile`].
    pub profile: Profile,
    /// See [`Report::phases`].
    pub phases: Vec<PhaseReport>,
    /// See [`Report::schedule_s`].
    pub schedule_s: f64,
    /// See [`Report::elapsed_s`].
    pub elapsed_s: f64,
    /// See [`Report::offered`].
    pub offered: u64,
    /// See [`Report::acked`].
    pub acked: u64,
    /// See [`Report::duplicate_acks`].
    pub duplicate_acks: u64,
    /// See [`Report::retried`].
    pub retried: u64,
    /// Acknowledgement latencies.
    pub ack: &'a Latency,
    /// Bot-reply latencies.
    pub bot_reply: &'a Latency,
    /// Handoff-to-offer latencies.
    pub handoff_to_offer: &'a Latency,
    /// Send lags.
    pub send_lag: &'a Latency,
    /// See [`Report::bot_replies`].
    pub bot: BotReplies,
    /// See [`Report::handoffs`].
    pub handoffs: Handoffs,
    /// Errors.
    pub errors: &'a Errors,
    /// See [`Report::loss`].
    pub loss: LossReport,
    /// See [`Report::series`].
    pub series: Vec<SecondPoint>,
}

impl Report {
    /// Assembles the report and its derived rates.
    #[must_use]
    pub fn build(parts: Parts<'_>) -> Self {
        let per_second = |count: u64, seconds: f64| {
            if seconds > 0.0 {
                round3(count as f64 / seconds)
            } else {
                0.0
            }
        };
        // Whole seconds within the schedule only: the last, partial one would understate.
        let whole = parts.schedule_s.floor() as u64;
        let full_seconds = || parts.series.iter().filter(|point| point.t < whole.max(1));
        Self {
            offered_msgs_per_s: per_second(parts.offered, parts.schedule_s),
            achieved_msgs_per_s: per_second(parts.acked, parts.elapsed_s),
            peak_offered_msgs_per_s: full_seconds().map(|p| p.offered).max().unwrap_or(0),
            peak_achieved_msgs_per_s: full_seconds().map(|p| p.achieved).max().unwrap_or(0),
            run_id: parts.run_id,
            target: parts.target,
            tenant: parts.tenant,
            seed: parts.seed,
            profile: parts.profile,
            phases: parts.phases,
            schedule_s: round3(parts.schedule_s),
            elapsed_s: round3(parts.elapsed_s),
            offered: parts.offered,
            acked: parts.acked,
            duplicate_acks: parts.duplicate_acks,
            retried: parts.retried,
            ack: parts.ack.summary(),
            bot_reply: parts.bot_reply.summary(),
            handoff_to_offer: parts.handoff_to_offer.summary(),
            send_lag: parts.send_lag.summary(),
            bot_replies: parts.bot,
            handoffs: parts.handoffs,
            errors: parts.errors.to_map(),
            message_errors: parts.errors.message_errors(),
            loss: parts.loss,
            series: parts.series,
        }
    }

    /// Whether the read-back found every acknowledged message exactly once.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        if self.loss.lost > 0 || self.loss.duplicated > 0 {
            Verdict::Loss
        } else if self.loss.unreadable_conversations > 0 {
            Verdict::Unverified
        } else {
            Verdict::Ok
        }
    }

    /// The one-line JSON summary printed last on stdout.
    #[must_use]
    pub fn summary_line(&self) -> Value {
        json!({
            "profile": self.profile.name,
            "offered": self.offered,
            "acked": self.acked,
            "offered_msgs_per_s": self.offered_msgs_per_s,
            "achieved_msgs_per_s": self.achieved_msgs_per_s,
            "peak_offered_msgs_per_s": self.peak_offered_msgs_per_s,
            "peak_achieved_msgs_per_s": self.peak_achieved_msgs_per_s,
            "ack_p50_ms": self.ack.p50_ms,
            "ack_p90_ms": self.ack.p90_ms,
            "ack_p99_ms": self.ack.p99_ms,
            "ack_p999_ms": self.ack.p999_ms,
            "bot_reply_p50_ms": self.bot_reply.p50_ms,
            "bot_reply_p99_ms": self.bot_reply.p99_ms,
            "bot_reply_p999_ms": self.bot_reply.p999_ms,
            "bot_replies_timed": self.bot_replies.timed,
            "bot_replies_missing": self.bot_replies.missing,
            "handoff_to_offer_p50_ms": self.handoff_to_offer.p50_ms,
            "handoff_to_offer_p99_ms": self.handoff_to_offer.p99_ms,
            "send_lag_p99_ms": self.send_lag.p99_ms,
            "handoffs_acked": self.handoffs.acked,
            "handoffs_offered": self.handoffs.offered,
            "errors": self.errors,
            "message_errors": self.message_errors,
            "lost": self.loss.lost,
            "duplicated": self.loss.duplicated,
            "unreadable_conversations": self.loss.unreadable_conversations,
        })
    }

    /// The readable summary table.
    #[must_use]
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "crest-loadtest: profile {} against {} (tenant {}, run {}, seed {})",
            self.profile.name, self.target, self.tenant, self.run_id, self.seed
        );
        let _ = writeln!(out, "\nphase        seconds   rate (msg/s)      arrivals");
        for phase in &self.phases {
            let rate = if (phase.from - phase.to).abs() < f64::EPSILON {
                format!("{:.0}", phase.from)
            } else {
                format!("{:.0} → {:.0}", phase.from, phase.to)
            };
            let _ = writeln!(
                out,
                "{:<12} {:>7.1}   {:<16} {:>9}",
                phase.name, phase.duration_s, rate, phase.arrivals
            );
        }
        let _ = writeln!(
            out,
            "\nthroughput   offered {} msgs ({:.0}/s, busiest second {}), acknowledged {} ({:.0}/s, busiest second {}) in {:.1} s",
            self.offered,
            self.offered_msgs_per_s,
            self.peak_offered_msgs_per_s,
            self.acked,
            self.achieved_msgs_per_s,
            self.peak_achieved_msgs_per_s,
            self.elapsed_s
        );
        if self.retried > 0 || self.duplicate_acks > 0 {
            let _ = writeln!(
                out,
                "failover     {} acknowledged after another attempt, {} of them already stored",
                self.retried, self.duplicate_acks
            );
        }
        let _ = writeln!(
            out,
            "\nlatency (ms)          count      p50      p90      p99    p99.9      max"
        );
        for (name, summary) in [
            ("ack", &self.ack),
            ("bot reply", &self.bot_reply),
            ("handoff → offer", &self.handoff_to_offer),
            ("generator lag", &self.send_lag),
        ] {
            let _ = writeln!(
                out,
                "{:<17} {:>9} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                name,
                summary.count,
                summary.p50_ms,
                summary.p90_ms,
                summary.p99_ms,
                summary.p999_ms,
                summary.max_ms
            );
        }
        let _ = writeln!(
            out,
            "\nbot replies  seen {} (timed {}, in catch-up {}), missing {}, handoffs seen {}",
            self.bot_replies.seen,
            self.bot_replies.timed,
            self.bot_replies.untimed,
            self.bot_replies.missing,
            self.bot_replies.handoffs_seen
        );
        let _ = writeln!(
            out,
            "handoffs     acknowledged {}, offered {}, accepted {}, resolved {}",
            self.handoffs.acked,
            self.handoffs.offered,
            self.handoffs.accepted,
            self.handoffs.resolved
        );
        let errors: Vec<String> = self
            .errors
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        let _ = writeln!(
            out,
            "errors       {}",
            if errors.is_empty() {
                "none".to_owned()
            } else {
                errors.join(", ")
            }
        );
        let _ = writeln!(
            out,
            "loss         {} acknowledged messages checked in {} conversations: lost {}, duplicated {}, stored but unacknowledged {}, unreadable conversations {}",
            self.loss.checked,
            self.loss.conversations,
            self.loss.lost,
            self.loss.duplicated,
            self.loss.stored_unacknowledged,
            self.loss.unreadable_conversations
        );
        out
    }
}

/// The outcome that decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every acknowledged message is stored exactly once.
    Ok,
    /// Something acknowledged was lost or stored twice.
    Loss,
    /// Some conversations could not be read back.
    Unverified,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ErrorKind;

    fn report() -> Report {
        let mut ack = Latency::new(3);
        ack.record(std::time::Duration::from_millis(2));
        let mut errors = Errors::default();
        errors.add(ErrorKind::Admission503);
        errors.add(ErrorKind::WebSocket);
        Report::build(Parts {
            run_id: "r".to_owned(),
            target: "http://127.0.0.1:1".to_owned(),
            tenant: "load".to_owned(),
            seed: 1,
            profile: Profile::constant(100.0, 2.0),
            phases: Vec::new(),
            schedule_s: 2.0,
            elapsed_s: 2.5,
            offered: 200,
            acked: 199,
            duplicate_acks: 0,
            retried: 0,
            ack: &ack,
            bot_reply: &Latency::new(3),
            handoff_to_offer: &Latency::new(3),
            send_lag: &Latency::new(3),
            bot: BotReplies::default(),
            handoffs: Handoffs::default(),
            errors: &errors,
            loss: LossReport::default(),
            series: vec![
                SecondPoint {
                    t: 0,
                    offered: 100,
                    achieved: 98,
                    errors: 0,
                    ack_p50_ms: 1.0,
                    ack_p99_ms: 2.0,
                    bot_reply_p50_ms: 0.0,
                    bot_reply_p99_ms: 0.0,
                },
                SecondPoint {
                    t: 2,
                    offered: 0,
                    achieved: 500,
                    errors: 0,
                    ack_p50_ms: 1.0,
                    ack_p99_ms: 2.0,
                    bot_reply_p50_ms: 0.0,
                    bot_reply_p99_ms: 0.0,
                },
            ],
        })
    }

    #[test]
    fn rates_and_summary_line() {
        let report = report();
        assert!((report.offered_msgs_per_s - 100.0).abs() < 1e-9);
        assert!((report.achieved_msgs_per_s - 79.6).abs() < 1e-9);
        // the trailing second after the schedule is not a "busiest second"
        assert_eq!(report.peak_achieved_msgs_per_s, 98);
        assert_eq!(report.message_errors, 1);
        let line = report.summary_line();
        for key in [
            "achieved_msgs_per_s",
            "offered_msgs_per_s",
            "ack_p50_ms",
            "ack_p99_ms",
            "bot_reply_p99_ms",
            "handoff_to_offer_p99_ms",
            "acked",
            "lost",
            "duplicated",
            "errors",
        ] {
            assert!(line.get(key).is_some(), "{key}");
        }
        assert_eq!(line["errors"]["admission_503"], 1);
        assert!(!line.to_string().contains('\n'));
        assert_eq!(report.verdict(), Verdict::Ok);
        assert!(report.table().contains("admission_503 1"));
    }

    #[test]
    fn verdict_follows_loss() {
        let mut report = report();
        report.loss.duplicated = 1;
        assert_eq!(report.verdict(), Verdict::Loss);
        report.loss.duplicated = 0;
        report.loss.unreadable_conversations = 2;
        assert_eq!(report.verdict(), Verdict::Unverified);
    }
}
