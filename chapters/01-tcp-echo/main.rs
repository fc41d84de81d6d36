//! A TCP echo server: the skeleton every later server in this project grows from.
//!
//! It listens on `--bind ADDR` (default 127.0.0.1) and `--port N` (default 6379),
//! gives each connection a thread of its own, and writes back every byte it reads.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

/// Where the server listens.
struct Config {
    bind: String,
    port: u16,
}

/// Everything that can stop this program.
#[derive(Debug)]
enum Error {
    /// A socket call failed.
    Io(io::Error),
    /// The command line could not be understood.
    Usage(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Usage(msg) => write!(f, "{msg}"),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl Config {
    /// Reads `--port N` and `--bind ADDR`, spelled as redis-server spells them.
    fn from_args(args: impl Iterator<Item = String>) -> Result<Config, Error> {
        let mut config = Config {
            bind: "127.0.0.1".to_string(),
            port: 6379,
        };
        let mut args = args;
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .ok_or_else(|| Error::Usage(format!("missing value after '{flag}'")))?;
            match flag.as_str() {
                "--port" => {
                    config.port = value
                        .parse()
                        .map_err(|_| Error::Usage(format!("invalid port '{value}'")))?;
                }
                "--bind" => config.bind = value,
                _ => return Err(Error::Usage(format!("unknown option '{flag}'"))),
            }
        }
        Ok(config)
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("# Fatal: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Error> {
    let config = Config::from_args(std::env::args().skip(1))?;
    let listener = TcpListener::bind((config.bind.as_str(), config.port))?;
    eprintln!("* Listening on {}", listener.local_addr()?);

    // How long to wait after a failed accept; `None` while accepts succeed.
    let mut backoff: Option<Duration> = None;
    for stream in listener.incoming() {
        // A failed accept (say, the process ran out of file descriptors)
        // concerns one would-be client: keep serving the others. But its
        // cause lasts, and the next accept fails at once too: retried at
        // once, it would spin a core and log a line per failure. So wait,
        // 1 ms first, twice as long after each failure in a row, at most
        // 1 s; and log only the first failure of a burst.
        let stream = match stream {
            Ok(stream) => {
                backoff = None;
                stream
            }
            Err(e) => {
                let delay = match backoff {
                    None => {
                        eprintln!("# Accept failed: {e} (retrying, less and less often)");
                        Duration::from_millis(1)
                    }
                    Some(delay) => (delay * 2).min(Duration::from_secs(1)),
                };
                backoff = Some(delay);
                thread::sleep(delay);
                continue;
            }
        };
        // The client may already be gone; that is its business, not a reason to stop.
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        eprintln!("* Accepted {peer}");
        thread::Builder::new()
            .name(format!("client {peer}"))
            .spawn(move || {
                if let Err(e) = echo(stream) {
                    eprintln!("# Client {peer}: {e}");
                }
                eprintln!("* Closed {peer}");
            })?;
    }
    Ok(())
}

/// Copies everything the client sends back to it until the client closes.
fn echo(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}
