//! Load profiles: phases of offered message rates (baseline → ramp → peak → cool-down) and the
//! settings of the virtual customers and agents, read from TOML or built from flags.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Why a profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("cannot read profile {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown fields.
    #[error("invalid profile: {0}")]
    Toml(#[from] toml::de::Error),
    /// A value is out of range.
    #[error("invalid profile: {0}")]
    Invalid(String),
}

/// One phase of the offered load: a constant `rate`, or a linear change `from` → `to`
/// (messages per second) over `duration_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Shown in reports (`baseline`, `ramp`, `peak`, `cool-down`, …).
    pub name: String,
    /// How long the phase lasts, in seconds.
    pub duration_s: f64,
    /// A constant rate (messages per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// The rate at the start of a linear ramp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<f64>,
    /// The rate at the end of a linear ramp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<f64>,
}

impl Phase {
    /// A constant-rate phase.
    #[must_use]
    pub fn constant(name: &str, duration_s: f64, rate: f64) -> Self {
        Self {
            name: name.to_owned(),
            duration_s,
            rate: Some(rate),
            from: None,
            to: None,
        }
    }

    /// A linear ramp.
    #[must_use]
    pub fn ramp(name: &str, duration_s: f64, from: f64, to: f64) -> Self {
        Self {
            name: name.to_owned(),
            duration_s,
            rate: None,
            from: Some(from),
            to: Some(to),
        }
    }

    /// The rates at the start and the end of the phase.
    ///
    /// # Errors
    /// Neither `rate` nor both of `from` and `to`, or both forms, or negative values.
    pub fn rates(&self) -> Result<(f64, f64), ProfileError> {
        let (from, to) = match (self.rate, self.from, self.to) {
            (Some(rate), None, None) => (rate, rate),
            (None, Some(from), Some(to)) => (from, to),
            _ => {
                return Err(ProfileError::Invalid(format!(
                    "phase {:?} needs either `rate` or both `from` and `to`",
                    self.name
                )));
            }
        };
        if !(from.is_finite() && to.is_finite() && from >= 0.0 && to >= 0.0) {
            return Err(ProfileError::Invalid(format!(
                "phase {:?}: rates must be finite and >= 0",
                self.name
            )));
        }
        Ok((from, to))
    }
}

/// A whole load test: phases, population and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Shown in reports.
    pub name: String,
    /// Virtual customers active at once. Arrivals go round-robin over them, so each customer
    /// sends its next scripted turn every `customers / rate` seconds (its think time); a customer
    /// whose script is done is replaced by a new one.
    #[serde(default = "defaults::customers")]
    pub customers: usize,
    /// Share of new customers (0–1) that run an angry complaint script ending in a handoff.
    #[serde(default = "defaults::handoff_share")]
    pub handoff_share: f64,
    /// Share of customers (0–1) whose conversation is followed over the WebSocket to measure the
    /// bot's reply latency (each costs one WebSocket per conversation on the server).
    #[serde(default = "defaults::follow_fraction")]
    pub follow_fraction: f64,
    /// Virtual agents online (0: none; handed-off chats then wait in the queue).
    #[serde(default = "defaults::agents")]
    pub agents: usize,
    /// Chats each agent takes at once.
    #[serde(default = "defaults::agent_capacity")]
    pub agent_capacity: u32,
    /// How often an agent polls its seat for offers, in milliseconds.
    #[serde(default = "defaults::agent_poll_ms")]
    pub agent_poll_ms: u64,
    /// How long an agent works on a chat between accepting and resolving it, in milliseconds.
    #[serde(default = "defaults::agent_handle_ms")]
    pub agent_handle_ms: u64,
    /// Most customer messages in flight at once; an arrival beyond it is not delayed but counted
    /// as the error `client_overload`.
    #[serde(default = "defaults::max_in_flight")]
    pub max_in_flight: usize,
    /// Client-side timeout of one request, in milliseconds.
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// With several target nodes: how long a message is tried over the nodes (a node down, a
    /// shard moving) before it counts as failed, in milliseconds.
    #[serde(default = "defaults::retry_for_ms")]
    pub retry_for_ms: u64,
    /// After the last arrival: how long to wait for outstanding bot replies, in seconds.
    #[serde(default = "defaults::drain_s")]
    pub drain_s: f64,
    /// Upper bound on the number of messages, whatever the phases say.
    #[serde(default = "defaults::max_messages")]
    pub max_messages: u64,
    /// The phases, in order.
    pub phases: Vec<Phase>,
}

mod defaults {
    pub fn customers() -> usize {
        1000
    }
    pub fn handoff_share() -> f64 {
        0.01
    }
    pub fn follow_fraction() -> f64 {
        1.0
    }
    pub fn agents() -> usize {
        10
    }
    pub fn agent_capacity() -> u32 {
        20
    }
    pub fn agent_poll_ms() -> u64 {
        25
    }
    pub fn agent_handle_ms() -> u64 {
        300
    }
    pub fn max_in_flight() -> usize {
        4096
    }
    pub fn request_timeout_ms() -> u64 {
        5000
    }
    pub fn retry_for_ms() -> u64 {
        30_000
    }
    pub fn drain_s() -> f64 {
        5.0
    }
    pub fn max_messages() -> u64 {
        10_000_000
    }
}

impl Profile {
    /// Parses and validates a TOML profile.
    ///
    /// # Errors
    /// Malformed TOML, unknown fields or values out of range.
    pub fn from_toml(text: &str) -> Result<Self, ProfileError> {
        let profile: Self = toml::from_str(text)?;
        profile.validate()?;
        Ok(profile)
    }

    /// Reads, parses and validates a TOML profile file.
    ///
    /// # Errors
    /// The file cannot be read, or see [`Profile::from_toml`].
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// A profile of one constant-rate phase with default settings.
    #[must_use]
    pub fn constant(rate: f64, duration_s: f64) -> Self {
        Self {
            name: format!("constant-{rate}"),
            customers: defaults::customers(),
            handoff_share: defaults::handoff_share(),
            follow_fraction: defaults::follow_fraction(),
            agents: defaults::agents(),
            agent_capacity: defaults::agent_capacity(),
            agent_poll_ms: defaults::agent_poll_ms(),
            agent_handle_ms: defaults::agent_handle_ms(),
            max_in_flight: defaults::max_in_flight(),
            request_timeout_ms: defaults::request_timeout_ms(),
            retry_for_ms: defaults::retry_for_ms(),
            drain_s: defaults::drain_s(),
            max_messages: defaults::max_messages(),
            phases: vec![Phase::constant("constant", duration_s, rate)],
        }
    }

    /// Checks every value.
    ///
    /// # Errors
    /// The first value out of range.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let invalid = |what: &str| Err(ProfileError::Invalid(what.to_owned()));
        if self.phases.is_empty() {
            return invalid("at least one [[phases]] is needed");
        }
        for phase in &self.phases {
            phase.rates()?;
            if !(phase.duration_s.is_finite() && phase.duration_s > 0.0) {
                return Err(ProfileError::Invalid(format!(
                    "phase {:?}: duration_s must be > 0",
                    phase.name
                )));
            }
        }
        if self.total_duration_s() > 24.0 * 3600.0 {
            return invalid("the phases last more than 24 h");
        }
        if self.customers == 0 {
            return invalid("customers must be >= 1");
        }
        if !(0.0..=1.0).contains(&self.handoff_share) {
            return invalid("handoff_share must be within 0..=1");
        }
        if !(0.0..=1.0).contains(&self.follow_fraction) {
            return invalid("follow_fraction must be within 0..=1");
        }
        if self.agent_capacity == 0 || self.agent_capacity > 100 {
            return invalid("agent_capacity must be within 1..=100");
        }
        if self.agent_poll_ms == 0 {
            return invalid("agent_poll_ms must be >= 1");
        }
        if self.max_in_flight == 0 {
            return invalid("max_in_flight must be >= 1");
        }
        if self.request_timeout_ms == 0 {
            return invalid("request_timeout_ms must be >= 1");
        }
        if !(self.drain_s.is_finite() && (0.0..=600.0).contains(&self.drain_s)) {
            return invalid("drain_s must be within 0..=600");
        }
        Ok(())
    }

    /// Multiplies every phase's rates by `factor` (to fit a profile to the node under test, e.g.
    /// `0.3` turns the Double-11 peak of 12,000 messages/s into 3,600); the name records it.
    ///
    /// # Errors
    /// A factor that is not a positive finite number.
    pub fn scale_rates(&mut self, factor: f64) -> Result<(), ProfileError> {
        if !(factor.is_finite() && factor > 0.0) {
            return Err(ProfileError::Invalid(format!(
                "the rate scale must be a positive number (got {factor})"
            )));
        }
        for phase in &mut self.phases {
            for rate in [&mut phase.rate, &mut phase.from, &mut phase.to]
                .into_iter()
                .flatten()
            {
                *rate *= factor;
            }
        }
        self.name = format!("{}×{factor}", self.name);
        Ok(())
    }

    /// The sum of the phase durations, in seconds.
    #[must_use]
    pub fn total_duration_s(&self) -> f64 {
        self.phases.iter().map(|phase| phase.duration_s).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
name = "example"
customers = 200
agents = 2

[[phases]]
name = "baseline"
duration_s = 10
rate = 100

[[phases]]
name = "ramp"
duration_s = 5
from = 100
to = 300
"#;

    #[test]
    fn parses_phases_and_fills_defaults() {
        let profile = Profile::from_toml(EXAMPLE).expect("test value");
        assert_eq!(profile.name, "example");
        assert_eq!(profile.customers, 200);
        assert_eq!(profile.agents, 2);
        assert_eq!(profile.agent_capacity, defaults::agent_capacity());
        assert_eq!(profile.phases.len(), 2);
        assert_eq!(
            profile.phases[0].rates().expect("test value"),
            (100.0, 100.0)
        );
        assert_eq!(
            profile.phases[1].rates().expect("test value"),
            (100.0, 300.0)
        );
        assert!((profile.total_duration_s() - 15.0).abs() < 1e-9);
    }

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        assert!(Profile::from_toml(&format!("{EXAMPLE}\nbogus = 1\n")).is_err());
        let no_phases = "name = \"x\"\nphases = []\n";
        assert!(Profile::from_toml(no_phases).is_err());
        let both =
            "name = \"x\"\n[[phases]]\nname = \"p\"\nduration_s = 1\nrate = 5\nfrom = 1\nto = 2\n";
        assert!(Profile::from_toml(both).is_err());
        let half_ramp = "name = \"x\"\n[[phases]]\nname = \"p\"\nduration_s = 1\nfrom = 1\n";
        assert!(Profile::from_toml(half_ramp).is_err());
        let negative = "name = \"x\"\n[[phases]]\nname = \"p\"\nduration_s = 1\nrate = -1\n";
        assert!(Profile::from_toml(negative).is_err());
        let zero_duration = "name = \"x\"\n[[phases]]\nname = \"p\"\nduration_s = 0\nrate = 1\n";
        assert!(Profile::from_toml(zero_duration).is_err());
        let mut profile = Profile::from_toml(EXAMPLE).expect("test value");
        profile.handoff_share = 1.5;
        assert!(profile.validate().is_err());
    }

    #[test]
    fn shipped_profiles_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        for name in ["smoke.toml", "double11.toml"] {
            let profile = Profile::load(&dir.join(name)).expect("test value");
            assert!(profile.total_duration_s() > 0.0, "{name}");
        }
        let smoke = Profile::load(&dir.join("smoke.toml")).expect("test value");
        assert!(smoke.total_duration_s() <= 30.0);
    }

    #[test]
    fn constant_profile_is_valid() {
        let profile = Profile::constant(500.0, 10.0);
        profile.validate().expect("test value");
        assert_eq!(profile.phases.len(), 1);
    }

    #[test]
    fn scaling_multiplies_every_rate_and_rejects_nonsense() {
        let mut profile = Profile::from_toml(
            "name = \"d\"\n[[phases]]\nname = \"base\"\nduration_s = 2\nrate = 100\n\
             [[phases]]\nname = \"ramp\"\nduration_s = 2\nfrom = 100\nto = 1000\n",
        )
        .expect("valid profile");
        profile.scale_rates(0.5).expect("valid factor");
        assert_eq!(profile.phases[0].rates().expect("rates"), (50.0, 50.0));
        assert_eq!(profile.phases[1].rates().expect("rates"), (50.0, 500.0));
        assert_eq!(profile.name, "d×0.5");
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let error = profile.scale_rates(bad).expect_err("rejected");
            assert!(error.to_string().contains("rate scale"), "{error}");
        }
        assert_eq!(profile.phases[1].rates().expect("rates"), (50.0, 500.0));
    }
}
