//! Runs the brain on dedicated threads, outside actor handlers.

use std::sync::Arc;
use std::time::Instant;

use crate::metrics::RuntimeMetrics;
use crate::ports::brain::{Brain, BrainAnswer, BrainInput, TextFacts};

type Job = Box<dyn FnOnce(&dyn Brain) + Send>;

/// A fixed pool of threads running [`Brain::respond`]. Dropping every clone stops the threads once
/// the queued jobs are done.
#[derive(Clone)]
pub struct BrainPool {
    jobs: flume::Sender<Job>,
    brain: Arc<dyn Brain>,
    metrics: RuntimeMetrics,
}

impl std::fmt::Debug for BrainPool {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BrainPool")
            .field("queued", &self.jobs.len())
            .finish()
    }
}

impl BrainPool {
    /// Starts `threads` worker threads around `brain`.
    pub fn start(
        brain: &Arc<dyn Brain>,
        threads: usize,
        metrics: RuntimeMetrics,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = flume::unbounded::<Job>();
        for index in 0..threads.max(1) {
            let receiver = receiver.clone();
            let brain = Arc::clone(brain);
            std::thread::Builder::new()
                .name(format!("crest-brain-{index}"))
                .spawn(move || {
                    while let Ok(job) = receiver.recv() {
                        job(brain.as_ref());
                    }
                })?;
        }
        Ok(Self {
            jobs: sender,
            brain: Arc::clone(brain),
            metrics,
        })
    }

    /// The language and order numbers of a text, computed at once on the caller's thread (fast:
    /// see [`Brain::text_facts`]).
    #[must_use]
    pub fn text_facts(&self, text: &str) -> TextFacts {
        self.brain.text_facts(text)
    }

    /// Queues `input`; `done` receives the answer on a brain thread.
    pub fn submit(&self, input: BrainInput, done: impl FnOnce(BrainAnswer) + Send + 'static) {
        let metrics = self.metrics.clone();
        metrics.brain_queue_depth.inc();
        let job: Job = Box::new(move |brain: &dyn Brain| {
            metrics.brain_queue_depth.dec();
            let started = Instant::now();
            let answer = brain.respond(&input);
            metrics
                .brain_seconds
                .observe(started.elapsed().as_secs_f64());
            done(answer);
        });
        if self.jobs.send(job).is_err() {
            tracing::warn!("brain pool stopped, message left unanswered");
        }
    }
}
