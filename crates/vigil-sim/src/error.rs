//! The errors of starting a simulation (the config's own errors are
//! [`vigil_config::ConfigErrors`], found before anything starts).

use std::net::SocketAddr;
use std::path::PathBuf;

/// A simulation that could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A TCP listener could not bind.
    #[error("{owner}: cannot listen on {addr}: {source} (is another program using the port?)")]
    Bind {
        /// The device or gateway whose listener it is.
        owner: String,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A serial port could not be opened.
    #[error("bus {bus}: cannot open serial port {}: {source}", port.display())]
    Serial {
        /// The bus.
        bus: String,
        /// The port.
        port: PathBuf,
        /// Why.
        source: tokio_serial::Error,
    },
    /// A device has no resolved profile (a [`Facility`](crate::Facility) built by hand
    /// without one).
    #[error("device {0}: no profile resolved for it")]
    NoProfile(String),
    /// An MQTT sensor's URL is unusable.
    #[error("MQTT sensor {id}: {source}")]
    Url {
        /// The sensor.
        id: String,
        /// Why.
        source: crate::mqtt::UrlError,
    },
}
