//! The change log: once a replica has connected, every change the
//! keyspace makes, written down as the command that replays it
//! (`SET k v PXAT t`, `DEL k`, `PEXPIREAT k t` ...), for the master to
//! send to its replicas. Recording at this level catches every change,
//! whoever makes it: a command, lazy expiry or the active expiry thread.

use crate::resp::Args;

/// The changes made since the last [`ChangeLog::take`], if recording.
#[derive(Debug, Default)]
pub(super) struct ChangeLog {
    recording: bool,
    changes: Vec<Args>,
}

impl ChangeLog {
    /// From now on, write down every change.
    pub(super) fn start(&mut self) {
        self.recording = true;
    }

    /// Writes down the change that `args` builds, if recording: the
    /// arguments are not even built otherwise.
    pub(super) fn record(&mut self, args: impl FnOnce() -> Args) {
        if self.recording {
            self.changes.push(args());
        }
    }

    /// The changes written down since the last call, oldest first.
    /// Writes down several changes, made by one command, if recording.
    pub(super) fn record_all(&mut self, args: impl FnOnce() -> Vec<Args>) {
        if self.recording {
            self.changes.extend(args());
        }
    }

    pub(super) fn take(&mut self) -> Vec<Args> {
        std::mem::take(&mut self.changes)
    }
}
