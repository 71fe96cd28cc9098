//! The Rust client: a blocking handle on a raftkv cluster.

pub(crate) mod admin;
pub(crate) mod backup;
pub(crate) mod pool;
pub(crate) mod pool_error;

use core::fmt;
use std::time::Duration;

use raftkv_core::client::ClerkError;
use raftkv_core::kv::{KvCommand, KvReply, Scan, ScanPage};

pub use crate::client::admin::MemberList;
pub use crate::client::backup::BackupSink;
pub use crate::client::pool::AddressStatus;
use crate::client::pool::ClerkPool;
use crate::tls::ClientTls;

/// Settings of a [`Client`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// The cluster's name, as the servers were started with (`--cluster-name`). Default
    /// `raftkv`.
    pub cluster_name: String,
    /// How long [`Client::connect_with`] waits for a first node to answer. Default 2 s.
    pub connect_timeout: Duration,
    /// How long an operation may take, retries included, before it fails with
    /// [`Error::Timeout`]. Default 10 s: several elections' worth.
    pub timeout: Duration,
    /// TLS, for a cluster that runs it (`None`, the default: in the clear). The client then
    /// presents its certificate and accepts a node only with a certificate of the cluster's
    /// CA that names the node id it answers with.
    pub tls: Option<ClientTls>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            cluster_name: "raftkv".to_string(),
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// Why an operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The address list is empty or an address does not resolve.
    Address(String),
    /// No node of the cluster could be reached.
    Unreachable {
        /// What happened with each address.
        detail: String,
    },
    /// The operation did not finish in time. A write may or may not have taken effect (once
    /// at most); read to find out.
    Timeout {
        /// The time limit.
        after: Duration,
        /// What happened with each address.
        detail: String,
    },
    /// The operation did not finish in time, and the node last asked answered that it had too
    /// many requests waiting (the client retried with a backoff until the timeout). Retryable:
    /// try again later or with a longer timeout. That last try had no effect; a write may
    /// still have taken effect (once at most) through an earlier try that got no answer.
    Busy {
        /// The time limit.
        after: Duration,
    },
    /// The cluster refused the operation for good (a key or value over the size limits; a
    /// membership change that names an unknown node, an id already a member, an address
    /// taken).
    Invalid {
        /// Why.
        reason: String,
    },
    /// A write was retried, then refused (its session expired, or it was found invalid
    /// against a state an earlier try may have changed): it may or may not have taken effect
    /// (once at most); read to find out.
    Indeterminate,
    /// The client itself failed (e.g. its poll).
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Address(reason) => write!(f, "bad cluster address: {reason}"),
            Error::Unreachable { detail } => write!(f, "cluster unreachable ({detail})"),
            Error::Timeout { after, detail } => write!(
                f,
                "no answer from the cluster within {after:?}; a write may or may not have \
                 taken effect ({detail})"
            ),
            Error::Busy { after } => write!(
                f,
                "cluster busy: too many requests waiting, still so after {after:?} of retries; \
                 retry later"
            ),
            Error::Invalid { reason } => write!(f, "invalid request: {reason}"),
            Error::Indeterminate => f.write_str(
                "refused after a retry (session expired, or invalid after an earlier try): the \
                 write may or may not have taken effect",
            ),
            Error::Io(reason) => write!(f, "client failure: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// The answer to [`Client::cas`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CasOutcome {
    /// Whether the key held the expected value and now holds the new one.
    pub swapped: bool,
    /// What the key held before (`None`: missing).
    pub previous: Option<Vec<u8>>,
}

/// A blocking client of a raftkv cluster: one session, one operation at a time.
///
/// It finds the leader by itself, follows "not the leader" hints, and retries a request that
/// got no answer at another node with the same request id, so every write takes effect exactly
/// once even across leader changes. Reads are linearizable: they see every write acknowledged
/// before they started. A `Client` can be moved to another thread; give each thread its own
/// (each is one session, doing one operation at a time).
///
/// ```no_run
/// // Start a cluster first: `raftkv local`.
/// let mut client = raftkv::Client::connect(&["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"])?;
/// client.put("greeting", "hello")?;
/// client.append("greeting", ", world")?;
/// assert_eq!(client.get("greeting")?.as_deref(), Some(&b"hello, world"[..]));
/// let swap = client.cas("greeting", Some(b"hello, world"), "bye")?;
/// assert!(swap.swapped);
/// client.delete("greeting")?;
/// assert_eq!(client.get("greeting")?, None);
/// # Ok::<(), raftkv::Error>(())
/// ```
pub struct Client {
    pool: ClerkPool,
    session: usize,
    options: ClientOptions,
}

impl Client {
    /// Connects to the cluster whose nodes listen at `addresses` (`HOST:PORT`), with default
    /// options. Fails if no node answers.
    pub fn connect<A: AsRef<str>>(addresses: &[A]) -> Result<Client, Error> {
        Client::connect_with(addresses, ClientOptions::default())
    }

    /// Connects with `options`.
    pub fn connect_with<A: AsRef<str>>(
        addresses: &[A],
        options: ClientOptions,
    ) -> Result<Client, Error> {
        let addresses: Vec<String> = addresses.iter().map(|a| a.as_ref().to_string()).collect();
        let mut pool = ClerkPool::new(&addresses, &options.cluster_name, options.tls.clone())
            .map_err(|error| Error::Address(error.to_string()))?;
        let reached =
            pool.connect(options.connect_timeout).map_err(|e| Error::Io(e.to_string()))?;
        if !reached {
            return Err(Error::Unreachable { detail: pool.describe_links() });
        }
        let session = pool.add_session();
        Ok(Client { pool, session, options })
    }

    /// The value of `key`, or `None` if it is missing. Linearizable.
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        let key = key.as_ref().to_vec();
        match self.run(KvCommand::Get { key })? {
            KvReply::Value(value) => Ok(value),
            other => Err(unexpected(&other)),
        }
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        let (key, value) = (key.as_ref().to_vec(), value.as_ref().to_vec());
        self.run_done(KvCommand::Put { key, value })
    }

    /// Appends `value` to the value of `key` (a missing key counts as empty).
    pub fn append(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        let (key, value) = (key.as_ref().to_vec(), value.as_ref().to_vec());
        match self.run(KvCommand::Append { key, value })? {
            KvReply::Length(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// One page of keys in order (with their values if `scan.with_values`), read at one point
    /// in time. Linearizable. To read the next page, scan again from the page's `next`:
    ///
    /// ```no_run
    /// # let mut client = raftkv::Client::connect(&["127.0.0.1:7001"])?;
    /// let mut scan = raftkv::Scan {
    ///     start: Vec::new(), end: None, prefix: b"user:".to_vec(), limit: 100, with_values: false,
    /// };
    /// loop {
    ///     let page = client.scan(&scan)?;
    ///     for key in &page.keys {
    ///         println!("{}", String::from_utf8_lossy(key));
    ///     }
    ///     match page.next {
    ///         Some(next) => scan.start = next,
    ///         None => break,
    ///     }
    /// }
    /// # Ok::<(), raftkv::Error>(())
    /// ```
    pub fn scan(&mut self, scan: &Scan) -> Result<ScanPage, Error> {
        match self.run(KvCommand::Scan(scan.clone()))? {
            KvReply::Page(page) => Ok(page),
            other => Err(unexpected(&other)),
        }
    }

    /// Removes `key` (nothing happens if it is missing).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<(), Error> {
        let key = key.as_ref().to_vec();
        self.run_done(KvCommand::Delete { key })
    }

    /// Sets `key` to `new` if it holds `expected` (`None`: if it is missing).
    pub fn cas(
        &mut self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: impl AsRef<[u8]>,
    ) -> Result<CasOutcome, Error> {
        let command = KvCommand::Cas {
            key: key.as_ref().to_vec(),
            expected: expected.map(<[u8]>::to_vec),
            new: new.as_ref().to_vec(),
        };
        match self.run(command)? {
            KvReply::Cas { swapped, previous } => Ok(CasOutcome { swapped, previous }),
            other => Err(unexpected(&other)),
        }
    }

    /// Every node's state, or why it did not answer, by address.
    pub fn status(&mut self) -> Result<Vec<AddressStatus>, Error> {
        self.pool.statuses(self.options.connect_timeout).map_err(|e| Error::Io(e.to_string()))
    }

    fn run_done(&mut self, command: KvCommand) -> Result<(), Error> {
        match self.run(command)? {
            KvReply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn run(&mut self, command: KvCommand) -> Result<KvReply, Error> {
        // A frame over the nodes' limit would only get the connection closed, again and again.
        let bytes = command.payload_bytes();
        if bytes > MAX_REQUEST_BYTES {
            let reason = format!(
                "request of {bytes} bytes exceeds the frame limit of {MAX_REQUEST_BYTES} bytes"
            );
            return Err(Error::Invalid { reason });
        }
        self.pool.submit(self.session, command);
        let finished =
            self.pool.next_finished(self.options.timeout).map_err(|e| Error::Io(e.to_string()))?;
        match finished {
            Some(finished) => finished.result.map_err(|error| match error {
                ClerkError::Invalid { reason } => Error::Invalid { reason },
                ClerkError::Indeterminate => Error::Indeterminate,
            }),
            None => {
                let busy = self.pool.session_busy(self.session);
                // The session still holds the operation; start afresh so the next one does
                // not queue behind it.
                self.pool.reset_session(self.session);
                if busy {
                    return Err(Error::Busy { after: self.options.timeout });
                }
                Err(Error::Timeout {
                    after: self.options.timeout,
                    detail: self.pool.describe_links(),
                })
            }
        }
    }
}

/// Largest key and values a request may carry: the default frame limit less room for the rest.
const MAX_REQUEST_BYTES: usize = crate::frame::MAX_FRAME_BYTES - 4096;

fn unexpected(reply: &KvReply) -> Error {
    Error::Io(format!("unexpected reply {reply:?}"))
}
