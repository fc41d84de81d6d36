//! The server as a whole: the bundle of handles every connection shares,
//! and the rules for the locks behind them.
//!
//! # Lock order
//!
//! Locks are taken in this order, never the other way round; a thread
//! that holds one may take a later one, not an earlier one:
//!
//! 1. `Persistence`'s save turn (only while a dump is written).
//! 2. The databases (`Db`'s read-write lock). One thread never asks for it
//!    twice: code that runs under it receives `&Databases` or
//!    `&mut Databases` and has no `Db` to lock again. The commands get a
//!    `cmd::Context`, which holds no `Db`; that is what makes a command
//!    inside EXEC (which holds the write lock) unable to deadlock.
//! 3. The replication state (`Replication`'s mutex): taken under the
//!    write lock when changes enter the stream (`propagate` takes the
//!    locked databases as proof), or alone.
//! 4. The append-only file (`aof/`): first its turn to write, held while
//!    its buffer goes to the file with no other lock (a rewrite's switch
//!    takes it under the databases' lock); then its state's mutex, taken
//!    under the databases' write lock when `propagate` appends changes, or
//!    alone, never while the replication state is held.
//! 5. The pub/sub registry (`PubSub`'s mutex): taken alone by the pub/sub
//!    commands, or under the databases' write lock when a change publishes
//!    a keyspace notification. It takes the outboxes' locks.
//! 6. Leaves, which take nothing while held: a keyspace's stale-key list,
//!    the persistence state, the settings, the client registry, each
//!    client's state, a subscriber's outbox, and the listening sockets.
//!
//! Before all of them comes the shutdown's gate on writes (`shutdown.rs`):
//! a write command takes it, shared, before the databases; a shutdown
//! takes it, exclusive, before its save's turn.
//!
//! No lock is held while a socket is read or written: a slow client or
//! replica must never stall the others.

use std::sync::Arc;
use std::time::Instant;

use crate::aof::Aof;
use crate::clients::Clients;
use crate::config::Config;
use crate::db::Db;
use crate::listen::Listeners;
use crate::persist::Persistence;
use crate::pubsub::PubSub;
use crate::replication::Replication;
use crate::settings::Settings;

/// What every connection shares. Cloning it is cheap and shares the parts.
#[derive(Clone)]
pub struct Server {
    /// The databases.
    pub db: Db,
    /// Master or replica, the stream, the replicas.
    pub replication: Replication,
    /// The options the server started with.
    pub config: Arc<Config>,
    /// The options CONFIG SET may change, as they are now.
    pub settings: Arc<Settings>,
    /// When we last saved, and whether a save is running.
    pub persistence: Arc<Persistence>,
    /// The connected clients and the server's counters.
    pub clients: Arc<Clients>,
    /// Where the server listens (CONFIG SET port and bind move it).
    pub listeners: Arc<Listeners>,
    /// Who is subscribed to what.
    pub pubsub: Arc<PubSub>,
    /// When the server started.
    pub started: Instant,
    /// The append-only file (also fed by `replication`, see `aof/`).
    pub aof: Aof,
}

impl Server {
    /// A fresh master with empty databases.
    pub fn new(config: Config) -> Server {
        let settings = Arc::new(Settings::new(&config));
        let aof = Aof::new(&config);
        Server {
            db: Db::new(config.databases),
            replication: Replication::with_buffer_limit(config.replica_buffer_limit)
                .feeding(aof.clone()),
            aof,
            persistence: Arc::new(Persistence::new(
                config.dbfilename.clone(),
                Arc::clone(&settings),
            )),
            pubsub: Arc::new(PubSub::new(Arc::clone(&settings))),
            settings,
            listeners: Arc::new(Listeners::new(
                config.bind.clone(),
                config.port,
                config.tcp_backlog,
            )),
            config: Arc::new(config),
            clients: Arc::new(Clients::default()),
            started: Instant::now(),
        }
    }
}
