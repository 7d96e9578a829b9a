//! A stand-in for a Confluent Schema Registry, for tests.
//!
//! No Confluent-compatible registry can be installed where Sluice's tests run, so they start
//! this one: the Confluent REST API (subjects, versions, global schema ids, references,
//! compatibility levels and checks, Confluent's error bodies) served from memory on a local
//! port. It is test support, not a product: state lives as long as the [`StandIn`].
//!
//! ```
//! let registry = sluice_registry_stand_in::StandIn::start()?;
//! let url = registry.url(); // http://127.0.0.1:PORT, for any Schema Registry client
//! # assert!(url.starts_with("http://127.0.0.1:"));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Schema types: AVRO (validated and checked with `apache-avro`), PROTOBUF (compiled with
//! `protox`; references are imports by name), JSON (must be JSON; a documented subset of
//! compatibility rules). The endpoints, error codes, compatibility rules and known differences
//! from Confluent are listed in the crate's `README.md`.

mod compatibility;
mod error;
mod model;
mod registry;
mod routes;
mod schema;
mod server;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;
use std::time::Duration;

use tiny_http::Server;

/// A running stand-in registry with empty state. Dropping it stops it; once `drop` returns,
/// the port is free again (it waits up to a second for that).
pub struct StandIn {
    address: SocketAddr,
    server: Option<Arc<Server>>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Starts a registry on `127.0.0.1` and a free port.
    pub fn start() -> io::Result<StandIn> {
        StandIn::start_at(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0).into())
    }

    /// Starts a registry on `address` (port 0 picks a free port).
    pub fn start_at(address: SocketAddr) -> io::Result<StandIn> {
        let server = Arc::new(Server::http(address).map_err(io::Error::other)?);
        let address = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("the server is not listening on an IP address"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let worker = std::thread::Builder::new()
            .name("schema-registry-stand-in".to_owned())
            .spawn({
                let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
                move || server::serve(&server, &stop)
            })?;
        Ok(StandIn {
            address,
            server: Some(server),
            stop,
            worker: Some(worker),
        })
    }

    /// The base URL clients use, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The address the registry listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl fmt::Debug for StandIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandIn")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server::stop(&server, &self.stop);
        }
        if let Some(worker) = self.worker.take() {
            // A panic in the worker already failed the test that caused it.
            let _ = worker.join();
        }
        // The last `Server` is gone: tiny_http's accept thread now closes the listener.
        for _ in 0..100 {
            if TcpStream::connect(self.address).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
