//! The per-thread state of a fuzz target that drives async code: a
//! current-thread runtime and what the target started on it (a sandbox, a
//! scripted server), built on the thread's first input and reused for
//! every later one, so that an input costs one exchange rather than a start.

use std::cell::RefCell;
use std::thread::LocalKey;

use tokio::runtime::Runtime;

/// A runtime and the state a target started on it.
pub struct Harness<S> {
    /// Runs the target's futures.
    pub runtime: Runtime,
    /// What the target started, on `runtime`.
    pub state: S,
}

/// A thread's harness slot: `thread_local!` it, starting empty.
pub type Slot<S> = RefCell<Option<Harness<S>>>;

/// Runs `run` with this thread's harness from `slot`, building it with
/// `start` (on a fresh current-thread runtime) on the thread's first call;
/// it is dropped (and what it started stopped) when the thread ends.
/// Panics (a fuzz finding) if the runtime cannot be built.
pub fn with_harness<S: 'static, R>(
    slot: &'static LocalKey<Slot<S>>,
    start: impl FnOnce(&Runtime) -> S,
    run: impl FnOnce(&Harness<S>) -> R,
) -> R {
    slot.with(|slot| {
        let mut slot = slot.borrow_mut();
        let harness = slot.get_or_insert_with(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let state = start(&runtime);
            Harness { runtime, state }
        });
        run(harness)
    })
}
