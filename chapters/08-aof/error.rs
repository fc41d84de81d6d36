//! The one error type of the server: what can stop it, or end a connection.
//!
//! A client's mistake is not here: that is an error *reply* (see `resp::Reply`),
//! and the connection carries on.

use std::fmt;
use std::io;

/// Everything that can go wrong outside the protocol.
#[derive(Debug)]
pub enum Error {
    /// A socket or file call failed.
    Io(io::Error),
    /// The command line could not be understood; the message says why.
    Config(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Config(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}
