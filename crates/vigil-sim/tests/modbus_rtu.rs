//! The simulator's Modbus RTU bus over a socat pty pair: tokio-modbus's RTU client on one
//! end, the simulator on the other. Two units on one bus, one of them silent; frames with a
//! bad CRC, for other units, or behind line noise; faults on a serial line.

mod common;

use std::time::Duration;

use common::{bounded, start, PtyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_modbus::prelude::*;
use tokio_serial::{SerialPortBuilderExt, SerialStream};
use vigil_core::Value;
use vigil_sim::modbus::rtu_frame;
use vigil_sim::{Endpoint, FaultKind, SimHandle};

const BAUD: u32 = 19_200;
/// How long a request that must go unanswered is given.
const SILENCE: Duration = Duration::from_millis(400);
/// How long a request that must be answered may take (generous: CI machines are busy).
const ANSWER: Duration = Duration::from_secs(3);

fn bus(port: &std::path::Path) -> String {
    format!(
        r#"
seed = 5

[[bus]]
id = "rs485-1"
port = {:?}
baud = {BAUD}
parity = "even"
stop_bits = 1

[[device]]
id = "env-cell-1"
profile = "temp-humidity-sensor"
transport = "rtu"
bus = "rs485-1"
unit = 1
[device.points.temperature]
kind = "constant"
value = 21.5
[device.points.sensor_fault]
kind = "constant"
value = true

[[device]]
id = "ups-dead"
profile = "ups"
transport = "rtu"
bus = "rs485-1"
unit = 2
[[device.fault]]
kind = "silent"

[[device]]
id = "fence-rtu"
profile = "perimeter-fence-controller"
transport = "rtu"
bus = "rs485-1"
unit = 3
[[device.fault]]
kind = "wrong_unit"
from = "0s"
until = "1h"
probability = 1.0

[[device]]
id = "fence-5"
profile = "perimeter-fence-controller"
transport = "rtu"
bus = "rs485-1"
unit = 5

[[device]]
id = "ups-busy"
profile = "ups"
transport = "rtu"
bus = "rs485-1"
unit = 4
[[device.fault]]
kind = "exception"
code = 6
"#,
        port.display().to_string()
    )
}

fn open_client(pair: &PtyPair) -> SerialStream {
    tokio_serial::new(pair.client.to_string_lossy(), BAUD)
        .parity(tokio_serial::Parity::Even)
        .open_native_async()
        .expect("the client end of the pty opens")
}

async fn setup() -> (PtyPair, SimHandle) {
    let pair = PtyPair::start();
    let sim = start(&bus(&pair.sim)).await;
    (pair, sim)
}

#[tokio::test]
async fn two_units_on_one_bus_one_silent() {
    let (pair, sim) = setup().await;
    assert!(matches!(
        &sim.device("env-cell-1").expect("device").endpoint,
        Endpoint::Rtu { bus, .. } if bus == "rs485-1"
    ));
    bounded(20, async {
        let mut ctx = rtu::attach_slave(open_client(&pair), Slave(1));
        let regs = tokio::time::timeout(ANSWER, ctx.read_input_registers(0, 3))
            .await
            .expect("answered")
            .expect("transport")
            .expect("no exception");
        assert_eq!(regs[0], 215, "21.5 degC at scale 0.1");
        assert_eq!(regs[1], 500, "humidity at the midpoint of its limits");
        let bits = ctx
            .read_discrete_inputs(0, 1)
            .await
            .expect("transport")
            .expect("no exception");
        assert_eq!(bits, [true]);

        // Unit 2 is silent: the client times out…
        ctx.set_slave(Slave(2));
        let r = tokio::time::timeout(SILENCE, ctx.read_input_registers(0, 1)).await;
        assert!(r.is_err(), "unit 2 is silent: {r:?}");
        // …and unit 1 still answers on the same bus.
        ctx.set_slave(Slave(1));
        let regs = tokio::time::timeout(ANSWER, ctx.read_input_registers(0, 1))
            .await
            .expect("answered")
            .expect("transport")
            .expect("no exception");
        assert_eq!(regs, [215]);

        // An exception fault on a serial line.
        ctx.set_slave(Slave(4));
        let r = tokio::time::timeout(ANSWER, ctx.read_input_registers(0, 1))
            .await
            .expect("answered")
            .expect("transport");
        assert_eq!(r, Err(ExceptionCode::ServerDeviceBusy));

        // A wrong unit id in the answer is a client error.
        ctx.set_slave(Slave(3));
        let r = tokio::time::timeout(ANSWER, ctx.read_holding_registers(0, 1)).await;
        assert!(matches!(r, Ok(Err(_)) | Err(_)), "{r:?}");

        // Writes over RTU.
        ctx.set_slave(Slave(1));
        let r = tokio::time::timeout(ANSWER, ctx.read_coils(0, 1)).await;
        assert_eq!(
            r.expect("answered").expect("transport"),
            Err(ExceptionCode::IllegalDataAddress),
            "the sensor has no coils"
        );
        let stats = sim.stats("ups-dead").expect("device");
        assert_eq!(stats.faults_of(FaultKind::Silent), 1);
        assert_eq!(stats.responses, 0);
        assert_eq!(
            sim.stats("fence-rtu")
                .expect("device")
                .faults_of(FaultKind::WrongUnit),
            1
        );
        assert_eq!(sim.stats("env-cell-1").expect("device").responses, 3);
    })
    .await;
    sim.stop().await;
}

/// Writes raw bytes and reads what comes back within `wait`.
async fn exchange(port: &mut SerialStream, bytes: &[u8], wait: Duration) -> Vec<u8> {
    port.write_all(bytes).await.expect("writes");
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, port.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if rtu_frame::crc_ok(&out) {
            break;
        }
    }
    out
}

#[tokio::test]
async fn bad_crc_other_units_and_line_noise() {
    let (pair, sim) = setup().await;
    bounded(20, async {
        let mut port = open_client(&pair);
        let read = rtu_frame::encode(1, &[4, 0, 0, 0, 1]);
        let expected = rtu_frame::encode(1, &[4, 2, 0, 215]);

        // A bad CRC is ignored, as a real slave does.
        let mut bad = read.clone();
        bad[6] ^= 0x55;
        assert_eq!(
            exchange(&mut port, &bad, Duration::from_millis(300)).await,
            Vec::<u8>::new()
        );

        // A frame for a unit that is not on the bus gets no answer.
        let other = rtu_frame::encode(9, &[4, 0, 0, 0, 1]);
        assert_eq!(
            exchange(&mut port, &other, Duration::from_millis(300)).await,
            Vec::<u8>::new()
        );

        // Line noise before a frame: the frame is still found.
        let mut noisy = vec![0x00, 0xFF, 0x13];
        noisy.extend(&read);
        assert_eq!(exchange(&mut port, &noisy, ANSWER).await, expected);

        // A frame that arrives in pieces, with a pause longer than 3.5 characters between.
        port.write_all(&read[..3]).await.expect("writes");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(exchange(&mut port, &read[3..], ANSWER).await, expected);

        // A function code the parser cannot size, ended by silence: exception 01.
        let custom = rtu_frame::encode(1, &[0x41, 1, 2]);
        assert_eq!(
            exchange(&mut port, &custom, ANSWER).await,
            rtu_frame::encode(1, &[0xC1, 1])
        );

        // A write to a table the sensor does not have: exception 02.
        let write = rtu_frame::encode(1, &[6, 0, 2, 0, 42]);
        assert_eq!(
            exchange(&mut port, &write, ANSWER).await,
            rtu_frame::encode(1, &[0x86, 2])
        );
        assert_eq!(
            sim.stats("env-cell-1").expect("device").requests,
            4,
            "bad CRCs are not requests"
        );

        // A multiple-register write to unit 5, then the value reads back.
        let write = rtu_frame::encode(5, &[16, 0, 0, 0, 1, 2, 0, 7]);
        assert_eq!(
            exchange(&mut port, &write, ANSWER).await,
            rtu_frame::encode(5, &[16, 0, 0, 0, 1])
        );
        assert_eq!(sim.value("fence-5", "sensitivity"), Some(Value::Int(7)));
    })
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn a_missing_serial_port_fails_the_start() {
    let text = bus(std::path::Path::new("/nonexistent/tty-vigil"));
    let err = vigil_sim::Simulator::start(common::facility(&text))
        .await
        .expect_err("no such port");
    assert!(err.to_string().contains("rs485-1"), "{err}");
    assert!(err.to_string().contains("/nonexistent/tty-vigil"), "{err}");
}
