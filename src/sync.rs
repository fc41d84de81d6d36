//! Locking a mutex the way this server always does.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex. A thread that panicked while holding it "poisons" it;
/// our critical sections leave their data consistent at every step, so a
/// panic elsewhere must never make the data unusable: carry on.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
