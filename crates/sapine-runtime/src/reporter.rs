//! Hands what happens to bots to the observer in order, off the supervisors' path: a bot's
//! restart never waits for a database write. Callers that answer a request wait for their
//! report to be persisted, so what they read back is current.

use std::sync::Arc;

use sapine_core::bots::{BotId, Crash, RunObserver, RunState};
use tokio::sync::{mpsc, oneshot};

enum Report {
    State(BotId, RunState),
    Crash(BotId, Crash),
}

type Queued = (Report, Option<oneshot::Sender<()>>);

#[derive(Clone)]
pub struct Reporter {
    queue: mpsc::UnboundedSender<Queued>,
}

impl Reporter {
    /// Starts the task that delivers reports; it ends when every `Reporter` is dropped.
    pub fn spawn(observer: Arc<dyn RunObserver>) -> Self {
        let (queue, mut reports) = mpsc::unbounded_channel::<Queued>();
        tokio::spawn(async move {
            while let Some((report, done)) = reports.recv().await {
                match report {
                    Report::State(bot, state) => observer.run_state(bot, state).await,
                    Report::Crash(bot, crash) => observer.crashed(bot, crash).await,
                }
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
        });
        Self { queue }
    }

    pub fn state(&self, bot: BotId, state: RunState) {
        let _ = self.queue.send((Report::State(bot, state), None));
    }

    /// Reports now; the future it returns ends once this report, and every one before it, is
    /// delivered.
    pub fn state_delivered(&self, bot: BotId, state: RunState) -> impl Future<Output = ()> + use<> {
        let (done, delivered) = oneshot::channel();
        let queued = self.queue.send((Report::State(bot, state), Some(done))).is_ok();
        async move {
            if queued {
                let _ = delivered.await;
            }
        }
    }

    pub fn crash(&self, bot: BotId, crash: Crash) {
        let _ = self.queue.send((Report::Crash(bot, crash), None));
    }
}
