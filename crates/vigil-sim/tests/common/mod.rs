//! Helpers of the simulator's end-to-end tests: facilities from TOML text, a bounded wait,
//! a real Mosquitto broker and a socat pty pair, each cleaned up when dropped.

#![allow(dead_code)]

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigil_sim::{Facility, SimHandle, Simulator};

/// The shipped device profiles.
pub fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../device-profiles")
}

/// A facility from `sim.toml` text (the shipped profiles are prepended as `[profiles]`).
pub fn facility(text: &str) -> Facility {
    let text = format!(
        "profiles.dirs = [{:?}]\n{text}",
        profiles_dir().display().to_string()
    );
    match Facility::parse(Path::new("test-sim.toml"), &text) {
        Ok(f) => f,
        Err(e) => panic!("test config is invalid:\n{e}"),
    }
}

/// Starts a facility from `sim.toml` text.
pub async fn start(text: &str) -> SimHandle {
    Simulator::start(facility(text))
        .await
        .expect("simulator starts")
}

/// Runs `f` with a deadline; a test never hangs.
pub async fn bounded<T>(secs: u64, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("the test finished in time")
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for a test's own broker).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A Mosquitto broker on a free loopback port, killed when dropped.
pub struct Broker {
    child: Child,
    /// The broker's port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts `/usr/sbin/mosquitto` on a free port and waits until it accepts connections.
    pub fn start() -> Broker {
        Broker::start_on(free_port())
    }

    /// Starts `/usr/sbin/mosquitto` on `port` and waits until it accepts connections.
    pub fn start_on(port: u16) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .expect("write mosquitto.conf");
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("the MQTT tests need Mosquitto at /usr/sbin/mosquitto (apt-get install mosquitto): {e}")
            });
        let broker = Broker {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two connected pseudo-terminals made by socat, killed when dropped.
pub struct PtyPair {
    child: Child,
    /// The end the simulator serves.
    pub sim: PathBuf,
    /// The end the client uses.
    pub client: PathBuf,
    _dir: tempfile::TempDir,
}

impl PtyPair {
    /// Starts `socat pty,raw,echo=0,link=A pty,raw,echo=0,link=B` and waits for both links.
    pub fn start() -> PtyPair {
        let dir = tempfile::tempdir().expect("temp dir");
        let sim = dir.path().join("sim-tty");
        let client = dir.path().join("client-tty");
        let child = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", sim.display()))
            .arg(format!("pty,raw,echo=0,link={}", client.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("the RTU tests need socat to make a pty pair (apt-get install socat): {e}")
            });
        let pair = PtyPair {
            child,
            sim,
            client,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(pair.sim.exists() && pair.client.exists()) {
            assert!(
                Instant::now() < deadline,
                "socat did not create the pty pair"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        pair
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
