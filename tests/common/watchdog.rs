//! A process-level watchdog for the tests that run Kafka clients: a hang in a synchronous
//! librdkafka call (a consumer's close, a commit) blocks the thread the test's own deadlines run
//! on, so they never fire, and CI waits for its hard limit. A [`Watchdog`] started by a test
//! aborts the whole test process once the test has run past a generous limit, after writing to
//! stderr (directly, past libtest's output capture) which test it was and where it stood.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

type Report = Box<dyn Fn() -> String + Send>;

struct Inner {
    test: String,
    started: Instant,
    limit: Duration,
    /// What the test is doing now; the test sets it as it goes.
    stage: Mutex<String>,
    /// More to say at the abort (the workers' metrics, say), computed then.
    report: Mutex<Option<Report>>,
    finished: Mutex<bool>,
    wake: Condvar,
}

/// Aborts the process if it is still alive `limit` after [`Watchdog::start`]; dropping it (the
/// test ended, passed or panicked) disarms it.
pub struct Watchdog(Arc<Inner>);

impl Watchdog {
    /// `ALERTCTX_TEST_WATCHDOG_SECS`, when set, replaces `limit` (to see the watchdog fire).
    pub fn start(test: &str, limit: Duration) -> Watchdog {
        let limit = std::env::var("ALERTCTX_TEST_WATCHDOG_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(limit, Duration::from_secs);
        let inner = Arc::new(Inner {
            test: test.to_string(),
            started: Instant::now(),
            limit,
            stage: Mutex::new("starting".into()),
            report: Mutex::new(None),
            finished: Mutex::new(false),
            wake: Condvar::new(),
        });
        let watched = inner.clone();
        std::thread::Builder::new()
            .name(format!("watchdog {test}"))
            .spawn(move || watch(&watched))
            .expect("starting the watchdog thread");
        Watchdog(inner)
    }

    /// Say where the test stands now (reported if the watchdog fires).
    pub fn stage(&self, stage: impl Into<String>) {
        *lock(&self.0.stage) = stage.into();
    }

    /// Something to compute and report if the watchdog fires, after the stage.
    pub fn report(&self, f: impl Fn() -> String + Send + 'static) {
        *lock(&self.0.report) = Some(Box::new(f));
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        *lock(&self.0.finished) = true;
        self.0.wake.notify_all();
    }
}

/// A poisoned lock (a test panicked holding it) still holds what the report needs.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn watch(w: &Inner) {
    let finished = lock(&w.finished);
    let (finished, _) = w
        .wake
        .wait_timeout_while(finished, w.limit, |done| !*done)
        .unwrap_or_else(|p| p.into_inner());
    if *finished {
        return;
    }
    drop(finished);
    // Written straight to the process's stderr: libtest captures what `eprintln!` prints from a
    // test's threads and shows it only when the test ends, which an abort prevents.
    let mut err = std::io::stderr();
    let stage = lock(&w.stage).clone();
    let _ = writeln!(
        err,
        "\nWATCHDOG: test `{}` still running {:.0?} after it started (limit {:?}): aborting the test process so that a hang cannot hold CI.\nWATCHDOG: `{}` stood at: {stage}",
        w.test,
        w.started.elapsed(),
        w.limit,
        w.test,
    );
    let _ = err.flush();
    // Computed after the stage is out: if this blocks too, the stage has been said.
    let report = lock(&w.report).as_ref().map(|f| f());
    if let Some(r) = report {
        let _ = writeln!(err, "WATCHDOG: `{}`: {r}", w.test);
    }
    let _ = writeln!(
        err,
        "WATCHDOG: rerun with ALERTCTX_TEST_TRACE=1 for the worker's log (rebalances, commits)."
    );
    let _ = err.flush();
    std::process::abort();
}
