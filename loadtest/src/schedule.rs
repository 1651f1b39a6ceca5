//! The open-loop arrival schedule: how many messages are due by a given time.
//!
//! Arrivals are deterministic: the `n`-th message is due when the integral of the offered rate
//! reaches `n`. The generator asks [`Schedule::due`] on every tick and starts whatever became due,
//! whatever the server's response times, so a slow server never slows the offered load.

use crate::profile::{Profile, ProfileError};

/// One phase as a time window with a linear rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The phase name.
    pub name: String,
    /// Start, seconds from the beginning of the run.
    pub start_s: f64,
    /// Length in seconds.
    pub duration_s: f64,
    /// Rate at the start (messages per second).
    pub from: f64,
    /// Rate at the end (messages per second).
    pub to: f64,
}

impl Segment {
    /// Arrivals within the first `t` seconds of this segment (`t` clamped to it).
    fn arrivals_within(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, self.duration_s);
        self.from * t + (self.to - self.from) * t * t / (2.0 * self.duration_s)
    }

    fn rate_at(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, self.duration_s);
        self.from + (self.to - self.from) * t / self.duration_s
    }
}

/// The whole run's arrival schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    segments: Vec<Segment>,
    max_messages: u64,
}

impl Schedule {
    /// The schedule of a profile.
    ///
    /// # Errors
    /// A phase without a valid rate.
    pub fn new(profile: &Profile) -> Result<Self, ProfileError> {
        let mut segments = Vec::with_capacity(profile.phases.len());
        let mut start_s = 0.0;
        for phase in &profile.phases {
            let (from, to) = phase.rates()?;
            segments.push(Segment {
                name: phase.name.clone(),
                start_s,
                duration_s: phase.duration_s,
                from,
                to,
            });
            start_s += phase.duration_s;
        }
        Ok(Self {
            segments,
            max_messages: profile.max_messages,
        })
    }

    /// The segments, in order.
    #[must_use]
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The length of the schedule in seconds.
    #[must_use]
    pub fn duration_s(&self) -> f64 {
        self.segments
            .last()
            .map_or(0.0, |last| last.start_s + last.duration_s)
    }

    /// The expected (fractional) number of arrivals in `[0, t)`.
    #[must_use]
    pub fn cumulative(&self, t: f64) -> f64 {
        self.segments
            .iter()
            .take_while(|segment| segment.start_s < t)
            .map(|segment| segment.arrivals_within(t - segment.start_s))
            .sum()
    }

    /// How many messages are due by `t` seconds (whole arrivals, capped by `max_messages`).
    #[must_use]
    pub fn due(&self, t: f64) -> u64 {
        // A tiny epsilon so that exact integers are not lost to rounding.
        let due = (self.cumulative(t) + 1e-9).floor();
        // `as` saturates for floats out of range; due is never negative.
        (due as u64).min(self.max_messages)
    }

    /// Every arrival of the run.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.due(self.duration_s())
    }

    /// The offered rate at `t` seconds (0 outside the schedule).
    #[must_use]
    pub fn rate_at(&self, t: f64) -> f64 {
        self.segment_at(t)
            .map_or(0.0, |segment| segment.rate_at(t - segment.start_s))
    }

    /// The phase running at `t` seconds.
    #[must_use]
    pub fn segment_at(&self, t: f64) -> Option<&Segment> {
        self.segments
            .iter()
            .find(|segment| t >= segment.start_s && t < segment.start_s + segment.duration_s)
    }

    /// Arrivals of each phase: `(name, count)`.
    #[must_use]
    pub fn arrivals_per_phase(&self) -> Vec<(String, u64)> {
        self.segments
            .iter()
            .map(|segment| {
                let count =
                    self.due(segment.start_s + segment.duration_s) - self.due(segment.start_s);
                (segment.name.clone(), count)
            })
            .collect()
    }

    /// The highest rate of the schedule.
    #[must_use]
    pub fn peak_rate(&self) -> f64 {
        self.segments
            .iter()
            .map(|segment| segment.from.max(segment.to))
            .fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Phase;

    fn profile(phases: Vec<Phase>) -> Profile {
        let mut profile = Profile::constant(1.0, 1.0);
        profile.phases = phases;
        profile
    }

    #[test]
    fn constant_phase_spreads_arrivals_evenly() {
        let schedule = Schedule::new(&profile(vec![Phase::constant("flat", 10.0, 300.0)]))
            .expect("test value");
        assert_eq!(schedule.total(), 3000);
        assert_eq!(schedule.due(0.0), 0);
        assert_eq!(schedule.due(1.0), 300);
        assert_eq!(schedule.due(0.5), 150);
        assert_eq!(schedule.due(100.0), 3000);
        assert!((schedule.rate_at(3.0) - 300.0).abs() < 1e-9);
        assert!(schedule.rate_at(10.0).abs() < 1e-9);
    }

    #[test]
    fn baseline_ramp_peak_cooldown_arrivals_per_phase() {
        let schedule = Schedule::new(&profile(vec![
            Phase::constant("baseline", 10.0, 300.0),
            Phase::ramp("ramp", 5.0, 300.0, 1000.0),
            Phase::constant("peak", 5.0, 1000.0),
            Phase::ramp("cool-down", 10.0, 1000.0, 100.0),
        ]))
        .expect("test value");
        let phases = schedule.arrivals_per_phase();
        let counts: Vec<u64> = phases.iter().map(|(_, count)| *count).collect();
        // baseline 300 × 10; ramp (300 + 1000) / 2 × 5; peak 1000 × 5; cool-down (1000 + 100) / 2 × 10
        assert_eq!(counts, vec![3000, 3250, 5000, 5500]);
        assert_eq!(schedule.total(), 16_750);
        assert!((schedule.duration_s() - 30.0).abs() < 1e-9);
        assert!((schedule.peak_rate() - 1000.0).abs() < 1e-9);
        assert_eq!(
            schedule.segment_at(12.0).map(|s| s.name.as_str()),
            Some("ramp")
        );
    }

    #[test]
    fn ramp_rate_is_linear_and_arrivals_quadratic() {
        let schedule = Schedule::new(&profile(vec![Phase::ramp("ramp", 10.0, 0.0, 1000.0)]))
            .expect("test value");
        assert!((schedule.rate_at(5.0) - 500.0).abs() < 1e-9);
        // ∫0^t 100 s ds = 50 t²
        assert_eq!(schedule.due(1.0), 50);
        assert_eq!(schedule.due(2.0), 200);
        assert_eq!(schedule.due(10.0), 5000);
        // the second half of a ramp up carries three times the first half
        let first = schedule.due(5.0);
        assert_eq!(schedule.total() - first, 3 * first);
    }

    #[test]
    fn due_is_monotonic_and_capped() {
        let mut capped = profile(vec![Phase::constant("flat", 10.0, 1000.0)]);
        capped.max_messages = 1234;
        let schedule = Schedule::new(&capped).expect("test value");
        let mut previous = 0;
        for step in 0..=2000 {
            let due = schedule.due(f64::from(step) * 0.005);
            assert!(due >= previous);
            previous = due;
        }
        assert_eq!(schedule.total(), 1234);
    }
}
