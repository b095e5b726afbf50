//! A real Modbus server for the agent's tests: tokio-modbus's TCP and RTU servers over a
//! register image, with switches to fall silent, answer with exceptions, or ignore units.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_modbus::prelude::*;
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use vigil_core::Value;
use vigil_profile::{encode_registers, Profile, Table};

/// The image of one unit: every table by address.
#[derive(Debug, Default, Clone)]
pub struct Image {
    pub coils: HashMap<u16, bool>,
    pub discrete: HashMap<u16, bool>,
    pub holding: HashMap<u16, u16>,
    pub input: HashMap<u16, u16>,
}

impl Image {
    /// Writes `value` into the registers or bit of `point` of `profile`.
    pub fn set(&mut self, profile: &Profile, point: &str, value: &Value) {
        let p = profile
            .points
            .iter()
            .find(|p| p.name == point)
            .expect("point in profile");
        match p.table {
            Table::Coil => {
                self.coils
                    .insert(p.address, value.as_f64().expect("bool") != 0.0);
            }
            Table::DiscreteInput => {
                self.discrete
                    .insert(p.address, value.as_f64().expect("bool") != 0.0);
            }
            Table::Holding | Table::Input => {
                let map = if p.table == Table::Holding {
                    &mut self.holding
                } else {
                    &mut self.input
                };
                let base = map.get(&p.address).copied().unwrap_or(0);
                let regs = encode_registers(p, value, base).expect("encodable");
                for (i, r) in regs.into_iter().enumerate() {
                    map.insert(p.address + i as u16, r);
                }
            }
        }
    }
}

/// Shared state of a test server.
#[derive(Debug, Default)]
pub struct State {
    pub units: Mutex<HashMap<u8, Image>>,
    /// Units that do not answer at all.
    pub silent: Mutex<HashSet<u8>>,
    /// Every unit silent.
    pub all_silent: AtomicBool,
    /// Addresses (table, address) whose reads answer IllegalDataAddress.
    pub forbidden: Mutex<HashSet<(Table, u16)>>,
    /// Requests received, by unit.
    pub requests: Mutex<HashMap<u8, u64>>,
    pub total_requests: AtomicU64,
}

impl State {
    pub fn requests_of(&self, unit: u8) -> u64 {
        self.requests
            .lock()
            .expect("lock")
            .get(&unit)
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Clone)]
struct TestService(Arc<State>);

impl tokio_modbus::server::Service for TestService {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Self::Response, Self::Exception>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        std::future::ready(self.answer(req))
    }
}

impl TestService {
    fn answer(&self, req: SlaveRequest<'static>) -> Result<Option<Response>, ExceptionCode> {
        let s = &self.0;
        let unit = req.slave;
        if s.all_silent.load(Ordering::SeqCst) || s.silent.lock().expect("lock").contains(&unit) {
            return Ok(None);
        }
        let units = s.units.lock().expect("lock");
        let Some(image) = units.get(&unit) else {
            return Ok(None);
        };
        s.total_requests.fetch_add(1, Ordering::SeqCst);
        *s.requests.lock().expect("lock").entry(unit).or_default() += 1;
        let forbidden = s.forbidden.lock().expect("lock");
        let check = |table: Table, a: u16, n: u16| {
            if (a..a + n).any(|x| forbidden.contains(&(table, x))) {
                Err(ExceptionCode::IllegalDataAddress)
            } else {
                Ok(())
            }
        };
        let bits = |m: &HashMap<u16, bool>, a: u16, n: u16| {
            (a..a + n)
                .map(|x| m.get(&x).copied().unwrap_or(false))
                .collect::<Vec<_>>()
        };
        let regs = |m: &HashMap<u16, u16>, a: u16, n: u16| {
            (a..a + n)
                .map(|x| m.get(&x).copied().unwrap_or(0))
                .collect::<Vec<_>>()
        };
        match req.request {
            Request::ReadCoils(a, n) => check(Table::Coil, a, n)
                .map(|()| Some(Response::ReadCoils(bits(&image.coils, a, n)))),
            Request::ReadDiscreteInputs(a, n) => check(Table::DiscreteInput, a, n)
                .map(|()| Some(Response::ReadDiscreteInputs(bits(&image.discrete, a, n)))),
            Request::ReadHoldingRegisters(a, n) => check(Table::Holding, a, n)
                .map(|()| Some(Response::ReadHoldingRegisters(regs(&image.holding, a, n)))),
            Request::ReadInputRegisters(a, n) => check(Table::Input, a, n)
                .map(|()| Some(Response::ReadInputRegisters(regs(&image.input, a, n)))),
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }
}

/// Starts a Modbus TCP server on an ephemeral loopback port.
pub async fn start_tcp(state: Arc<State>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Server::new(listener);
    tokio::spawn(async move {
        let on_connected = move |stream, socket_addr| {
            let svc = TestService(state.clone());
            async move { accept_tcp_connection(stream, socket_addr, move |_| Ok(Some(svc.clone()))) }
        };
        let _ = server.serve(&on_connected, |_err| {}).await;
    });
    addr
}

/// A serial pair made by socat: two pseudo-terminals linked back to back.
pub struct PtyPair {
    child: Child,
    pub server: PathBuf,
    pub client: PathBuf,
    _dir: tempfile::TempDir,
}

impl PtyPair {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = dir.path().join("server");
        let client = dir.path().join("client");
        let child = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", server.display()))
            .arg(format!("pty,raw,echo=0,link={}", client.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat is needed for the RTU tests: run `make deps`");
        for _ in 0..100 {
            if server.exists() && client.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(exists(&server) && exists(&client), "socat made no pty pair");
        PtyPair {
            child,
            server,
            client,
            _dir: dir,
        }
    }
}

fn exists(p: &Path) -> bool {
    p.exists()
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves `state` as an RTU slave on a serial port.
pub fn start_rtu(state: Arc<State>, port: &Path) {
    let server = tokio_modbus::server::rtu::Server::new_from_path(port, 19200).expect("open pty");
    tokio::spawn(async move {
        let _ = server.serve_forever(TestService(state)).await;
    });
}
