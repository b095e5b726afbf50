//! The simulator's Modbus TCP devices, driven over loopback by tokio-modbus as a client:
//! every table and function code, values decoded with the profile codec, exceptions,
//! several unit ids behind one gateway listener, and every scripted fault.

mod common;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{bounded, profiles_dir, start};
use tokio_modbus::client::Context;
use tokio_modbus::prelude::*;
use vigil_core::Value;
use vigil_profile::{decode_registers, Profile};
use vigil_sim::FaultKind;

fn profile(name: &str) -> Profile {
    vigil_profile::load_file(&profiles_dir().join(format!("{name}.yaml"))).expect("profile")
}

/// Decodes point `name` of `profile` out of `regs`, read from `first`.
fn decode(profile: &Profile, name: &str, regs: &[u16], first: u16) -> Value {
    let p = profile
        .points
        .iter()
        .find(|p| p.name == name)
        .expect("point");
    let at = usize::from(p.address - first);
    decode_registers(p, &regs[at..at + usize::from(p.width())]).expect("decodes")
}

fn float(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

async fn connect(addr: SocketAddr, unit: u8) -> Context {
    tcp::connect_slave(addr, Slave(unit))
        .await
        .expect("connects")
}

/// How long a request that must go unanswered is given.
const SILENCE: Duration = Duration::from_millis(400);
/// How long a request that must be answered may take (generous: CI machines are busy).
const ANSWER: Duration = Duration::from_secs(3);

const FACILITY: &str = r#"
seed = 11

[[device]]
id = "fence"
profile = "perimeter-fence-controller"
listen = "127.0.0.1:0"
unit = 1
[device.points.zone3_alarm]
kind = "constant"
value = true
[device.points.zone2_tamper]
kind = "event"
at = "0s"
[device.points.supply_voltage]
kind = "constant"
value = 24.5
[device.points.zone1_vibration_level]
kind = "constant"
value = 12.3
[device.points.sensitivity]
kind = "constant"
value = 5

[[device]]
id = "meter"
profile = "power-meter"
listen = "127.0.0.1:0"
[device.points.voltage_l1]
kind = "constant"
value = 231.25
[device.points.current_l2]
kind = "noise"
mean = 12.0
amplitude = 0.5
[device.points.energy_import]
kind = "constant"
value = 12345.6
[device.points.energy_total_wh]
kind = "constant"
value = 5000000000
[device.points.power_factor]
kind = "constant"
value = -0.5
[device.points.reactive_power]
kind = "constant"
value = -1.25
[device.points.frequency]
kind = "step"
before = 50.0
after = 49.0
at = "400ms"

[[device]]
id = "cdab"
profile = "power-meter-cdab"
listen = "127.0.0.1:0"
[device.points.voltage_l1]
kind = "constant"
value = 229.5
[device.points.energy_total_wh]
kind = "constant"
value = -123456789
[device.points.power_quality]
kind = "constant"
value = 99.125

[[device]]
id = "barrier"
profile = "microwave-barrier"
listen = "127.0.0.1:0"

[[device]]
id = "door"
profile = "door-access-controller"
listen = "127.0.0.1:0"
[device.points.door2_forced]
kind = "constant"
value = true

[[device]]
id = "ups"
profile = "ups"
listen = "127.0.0.1:0"
"#;

#[tokio::test]
async fn every_table_and_function_code() {
    let sim = start(FACILITY).await;
    bounded(20, async {
        // FC 2: discrete inputs, bits of one range bridging the gaps between points.
        let fence = profile("perimeter-fence-controller");
        let mut ctx = connect(sim.addr("fence").expect("tcp"), 1).await;
        let bits = ctx
            .read_discrete_inputs(0, 25)
            .await
            .expect("transport")
            .expect("no exception");
        let on: Vec<usize> = (0..25).filter(|i| bits[*i]).collect();
        assert_eq!(on, [2, 17], "zone3_alarm and zone2_tamper");
        // FC 4: input registers, an f32 and a scaled u16, across the gap between them.
        let regs = ctx
            .read_input_registers(10, 11)
            .await
            .expect("transport")
            .expect("no exception");
        assert_eq!(
            decode(&fence, "supply_voltage", &regs, 10),
            Value::Float(24.5)
        );
        assert!((float(&decode(&fence, "zone1_vibration_level", &regs, 10)) - 12.3).abs() < 1e-9);
        assert_eq!(regs[2..10], [0; 8], "the gap reads zeros");
        // FC 3, 6, 16: holding registers.
        let regs = ctx
            .read_holding_registers(0, 1)
            .await
            .expect("transport")
            .expect("ok");
        assert_eq!(regs, [5]);
        ctx.write_single_register(0, 8)
            .await
            .expect("transport")
            .expect("ok");
        assert_eq!(
            ctx.read_holding_registers(0, 1)
                .await
                .expect("transport")
                .expect("ok"),
            [8]
        );
        ctx.write_multiple_registers(0, &[9])
            .await
            .expect("transport")
            .expect("ok");
        assert_eq!(sim.value("fence", "sensitivity"), Some(Value::Int(9)));

        // FC 1, 5, 15: coils.
        let mut ctx = connect(sim.addr("barrier").expect("tcp"), 1).await;
        assert_eq!(
            ctx.read_coils(0, 1).await.expect("transport").expect("ok"),
            [false]
        );
        ctx.write_single_coil(0, true)
            .await
            .expect("transport")
            .expect("ok");
        assert_eq!(
            ctx.read_coils(0, 1).await.expect("transport").expect("ok"),
            [true]
        );
        ctx.write_multiple_coils(0, &[false])
            .await
            .expect("transport")
            .expect("ok");
        assert_eq!(
            ctx.read_coils(0, 1).await.expect("transport").expect("ok"),
            [false]
        );

        // Bit-in-register bools: door 2's register has locked (bit 1) and forced (bit 2).
        let mut ctx = connect(sim.addr("door").expect("tcp"), 1).await;
        let regs = ctx
            .read_holding_registers(0, 4)
            .await
            .expect("transport")
            .expect("ok");
        assert_eq!(regs, [0b010, 0b110, 0b010, 0b010]);

        // Strings.
        let mut ctx = connect(sim.addr("ups").expect("tcp"), 1).await;
        let regs = ctx
            .read_holding_registers(100, 8)
            .await
            .expect("transport")
            .expect("ok");
        assert_eq!(
            decode(&profile("ups"), "model_name", &regs, 100),
            Value::Text("UPS-3K".into())
        );

        let stats = sim.stats("fence").expect("device");
        assert_eq!(stats.requests, 6);
        assert_eq!(stats.responses, 6);
        assert_eq!(stats.writes, 2);
        assert_eq!(stats.faults_total(), 0);
    })
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn values_follow_the_scenarios_in_every_word_and_byte_order() {
    let sim = start(FACILITY).await;
    bounded(20, async {
        let meter = profile("power-meter");
        let mut ctx = connect(sim.addr("meter").expect("tcp"), 1).await;
        let before = sim.elapsed();
        let regs = ctx
            .read_input_registers(0, 29)
            .await
            .expect("transport")
            .expect("ok");
        let after = sim.elapsed();
        assert_eq!(decode(&meter, "voltage_l1", &regs, 0), Value::Float(231.25));
        let current = float(&decode(&meter, "current_l2", &regs, 0));
        assert!(
            (11.5..=12.5).contains(&current),
            "noise within its amplitude: {current}"
        );
        assert!((float(&decode(&meter, "energy_import", &regs, 0)) - 12345.6).abs() < 1e-6);
        assert_eq!(
            decode(&meter, "energy_total_wh", &regs, 0),
            Value::Int(5_000_000_000)
        );
        assert!((float(&decode(&meter, "power_factor", &regs, 0)) + 0.5).abs() < 1e-9);
        assert!((float(&decode(&meter, "reactive_power", &regs, 0)) + 1.25).abs() < 1e-9);
        // Unscripted points start normal: voltage_l2 has no limits → 0.
        assert_eq!(decode(&meter, "voltage_l2", &regs, 0), Value::Float(0.0));
        // The step at 400 ms.
        let frequency = float(&decode(&meter, "frequency", &regs, 0));
        if after < Duration::from_millis(400) {
            assert!((frequency - 50.0).abs() < 1e-9, "{frequency}");
        } else if before >= Duration::from_millis(400) {
            assert!((frequency - 49.0).abs() < 1e-9, "{frequency}");
        }
        tokio::time::sleep(Duration::from_millis(400).saturating_sub(sim.elapsed())).await;
        let regs = ctx
            .read_input_registers(16, 1)
            .await
            .expect("transport")
            .expect("ok");
        assert!((float(&decode(&meter, "frequency", &regs, 16)) - 49.0).abs() < 1e-9);
        // What the handle says a point reads is what the wire says.
        assert_eq!(sim.value("meter", "voltage_l1"), Some(Value::Float(231.25)));

        // Little word order, little byte order, i64 and f64.
        let cdab = profile("power-meter-cdab");
        let mut ctx = connect(sim.addr("cdab").expect("tcp"), 1).await;
        let regs = ctx
            .read_holding_registers(0, 18)
            .await
            .expect("transport")
            .expect("ok");
        assert_eq!(decode(&cdab, "voltage_l1", &regs, 0), Value::Float(229.5));
        assert_eq!(
            decode(&cdab, "energy_total_wh", &regs, 0),
            Value::Int(-123_456_789)
        );
        assert_eq!(
            decode(&cdab, "power_quality", &regs, 0),
            Value::Float(99.125)
        );
        // 229.5 = 0x43658000: low word first.
        assert_eq!(regs[..2], [0x8000, 0x4365]);
    })
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn protocol_exceptions() {
    let sim = start(FACILITY).await;
    bounded(20, async {
        let mut ctx = connect(sim.addr("fence").expect("tcp"), 1).await;
        // 02: outside the served ranges (holding has only address 0; no coils at all).
        assert_eq!(
            ctx.read_holding_registers(1, 1).await.expect("transport"),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            ctx.read_coils(0, 1).await.expect("transport"),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            ctx.read_input_registers(10, 12).await.expect("transport"),
            Err(ExceptionCode::IllegalDataAddress),
            "one past the last point"
        );
        assert_eq!(
            ctx.write_single_register(3, 1).await.expect("transport"),
            Err(ExceptionCode::IllegalDataAddress)
        );
        // 03: more than 125 registers or 2000 bits.
        assert_eq!(
            ctx.read_input_registers(0, 126).await.expect("transport"),
            Err(ExceptionCode::IllegalDataValue)
        );
        assert_eq!(
            ctx.read_discrete_inputs(0, 2001).await.expect("transport"),
            Err(ExceptionCode::IllegalDataValue)
        );
        // 01: a function code the device does not serve.
        let custom = ctx
            .call(Request::Custom(0x41, Cow::Borrowed(&[1, 2])))
            .await
            .expect("transport");
        assert_eq!(custom, Err(ExceptionCode::IllegalFunction));
        // The connection still serves.
        assert!(ctx
            .read_discrete_inputs(0, 8)
            .await
            .expect("transport")
            .is_ok());
        // Unit 255 addresses a device on its own listener.
        let mut direct = connect(sim.addr("fence").expect("tcp"), 255).await;
        assert!(direct
            .read_holding_registers(0, 1)
            .await
            .expect("transport")
            .is_ok());
        let stats = sim.stats("fence").expect("device");
        assert_eq!(stats.exceptions, 7);
        assert_eq!(stats.responses, 2);
    })
    .await;
    sim.stop().await;
}

const GATEWAY: &str = r#"
seed = 3

[[gateway]]
id = "gw"
listen = "127.0.0.1:0"

[[device]]
id = "ups-1"
profile = "ups"
gateway = "gw"
unit = 1

[[device]]
id = "env-2"
profile = "temp-humidity-sensor"
gateway = "gw"
unit = 2
[device.points.temperature]
kind = "constant"
value = 21.5

[[device]]
id = "silent"
profile = "ups"
gateway = "gw"
unit = 3
[[device.fault]]
kind = "silent"

[[device]]
id = "slow"
profile = "ups"
gateway = "gw"
unit = 4
[[device.fault]]
kind = "delay"
delay = "300ms"

[[device]]
id = "failing"
profile = "ups"
gateway = "gw"
unit = 5
[[device.fault]]
kind = "exception"
code = 4

[[device]]
id = "noisy"
profile = "ups"
gateway = "gw"
unit = 6
[[device.fault]]
kind = "garbage"

[[device]]
id = "confused"
profile = "ups"
gateway = "gw"
unit = 7
[[device.fault]]
kind = "wrong_unit"

[[device]]
id = "lost"
profile = "ups"
gateway = "gw"
unit = 8
[[device.fault]]
kind = "wrong_transaction"

[[device]]
id = "dropper"
profile = "ups"
gateway = "gw"
unit = 9
[[device.fault]]
kind = "drop_connection"

[[device]]
id = "flaky"
profile = "ups"
listen = "127.0.0.1:0"
[[device.fault]]
kind = "silent"
until = "1500ms"
"#;

/// A fresh connection to the healthy units of the gateway still gets answers.
async fn gateway_still_serves(addr: SocketAddr) {
    let mut ctx = connect(addr, 1).await;
    let regs = tokio::time::timeout(ANSWER, ctx.read_input_registers(0, 1))
        .await
        .expect("answered")
        .expect("transport")
        .expect("no exception");
    assert_eq!(regs, [80], "ups-1 battery_percent");
}

#[tokio::test]
async fn several_units_behind_one_listener() {
    let sim = start(GATEWAY).await;
    bounded(20, async {
        let addr = sim.gateway_addr("gw").expect("gateway");
        assert_eq!(sim.addr("ups-1"), Some(addr));
        assert_eq!(sim.addr("env-2"), Some(addr));
        let mut ctx = connect(addr, 1).await;
        assert_eq!(
            ctx.read_input_registers(0, 1).await.expect("transport"),
            Ok(vec![80])
        );
        // The same connection, another unit, another profile.
        ctx.set_slave(Slave(2));
        let regs = ctx
            .read_input_registers(0, 3)
            .await
            .expect("transport")
            .expect("ok");
        let env = profile("temp-humidity-sensor");
        assert_eq!(decode(&env, "temperature", &regs, 0), Value::Float(21.5));
        assert_eq!(
            regs[1], 500,
            "humidity starts at the midpoint of its limits: 50.0 %RH"
        );
        // A unit id nobody has: the gateway says so.
        ctx.set_slave(Slave(42));
        assert_eq!(
            ctx.read_input_registers(0, 1).await.expect("transport"),
            Err(ExceptionCode::GatewayTargetDevice)
        );
        // Unit 255 is not a device behind a gateway.
        ctx.set_slave(Slave(255));
        assert_eq!(
            ctx.read_input_registers(0, 1).await.expect("transport"),
            Err(ExceptionCode::GatewayTargetDevice)
        );
        // Broadcast writes reach every unit and get no answer: check through the handle.
        assert_eq!(sim.stats("ups-1").expect("device").requests, 1);
    })
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn faults_behave_as_scripted_and_the_server_keeps_serving() {
    let sim = start(GATEWAY).await;
    bounded(30, async {
        let addr = sim.gateway_addr("gw").expect("gateway");

        // silent: the request is read and dropped; the client times out.
        let mut ctx = connect(addr, 3).await;
        let r = tokio::time::timeout(SILENCE, ctx.read_input_registers(0, 1)).await;
        assert!(r.is_err(), "no answer: {r:?}");
        gateway_still_serves(addr).await;
        assert_eq!(
            sim.stats("silent")
                .expect("device")
                .faults_of(FaultKind::Silent),
            1
        );

        // delay: answered, late.
        let mut ctx = connect(addr, 4).await;
        let t0 = Instant::now();
        let r = ctx.read_input_registers(0, 1).await.expect("transport");
        assert_eq!(r, Ok(vec![80]));
        assert!(
            t0.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(
            sim.stats("slow")
                .expect("device")
                .faults_of(FaultKind::Delay),
            1
        );

        // exception: every request gets the scripted exception code.
        let mut ctx = connect(addr, 5).await;
        assert_eq!(
            ctx.read_input_registers(0, 1).await.expect("transport"),
            Err(ExceptionCode::ServerDeviceFailure)
        );
        assert_eq!(
            ctx.write_single_register(100, 1).await.expect("transport"),
            Err(ExceptionCode::ServerDeviceFailure)
        );

        // garbage: a broken MBAP header; the client fails on it.
        let mut ctx = connect(addr, 6).await;
        let r = tokio::time::timeout(ANSWER, ctx.read_input_registers(0, 1)).await;
        assert!(matches!(r, Ok(Err(_))), "a client error: {r:?}");
        gateway_still_serves(addr).await;

        // wrong_unit: the answer names another unit; the client rejects it.
        let mut ctx = connect(addr, 7).await;
        let r = ctx.read_input_registers(0, 1).await;
        assert!(
            matches!(
                r,
                Err(tokio_modbus::Error::Protocol(
                    ProtocolError::HeaderMismatch { .. }
                ))
            ),
            "{r:?}"
        );
        gateway_still_serves(addr).await;

        // wrong_transaction: the answer has another transaction id.
        let mut ctx = connect(addr, 8).await;
        let r = ctx.read_input_registers(0, 1).await;
        assert!(
            matches!(
                r,
                Err(tokio_modbus::Error::Protocol(
                    ProtocolError::HeaderMismatch { .. }
                ))
            ),
            "{r:?}"
        );
        gateway_still_serves(addr).await;

        // drop_connection: the server closes the connection.
        let mut ctx = connect(addr, 9).await;
        let r = tokio::time::timeout(SILENCE, ctx.read_input_registers(0, 1)).await;
        assert!(
            matches!(r, Ok(Err(tokio_modbus::Error::Transport(_)))),
            "{r:?}"
        );
        gateway_still_serves(addr).await;

        // Faults that replace the answer leave no normal response; a wrong unit or
        // transaction id corrupts an answer that was produced.
        for (device, kind, responses) in [
            ("failing", FaultKind::Exception, 0),
            ("noisy", FaultKind::Garbage, 0),
            ("confused", FaultKind::WrongUnit, 1),
            ("lost", FaultKind::WrongTransaction, 1),
            ("dropper", FaultKind::DropConnection, 0),
        ] {
            let stats = sim.stats(device).expect("device");
            assert!(stats.faults_of(kind) >= 1, "{device}: {stats:?}");
            assert_eq!(stats.responses, responses, "{device}: {stats:?}");
        }
        assert_eq!(sim.stats("ups-1").expect("device").faults_total(), 0);

        // A fault in a window: silent until 1.5 s, then the device answers again.
        let flaky = sim.addr("flaky").expect("tcp");
        let mut ctx = connect(flaky, 1).await;
        if sim.elapsed() < Duration::from_millis(1000) {
            let r = tokio::time::timeout(SILENCE, ctx.read_input_registers(0, 1)).await;
            assert!(r.is_err(), "silent in its window: {r:?}");
        }
        tokio::time::sleep(Duration::from_millis(1600).saturating_sub(sim.elapsed())).await;
        let mut ctx = connect(flaky, 1).await;
        let r = tokio::time::timeout(ANSWER, ctx.read_input_registers(0, 1))
            .await
            .expect("answered after the window")
            .expect("transport");
        assert_eq!(r, Ok(vec![80]));
    })
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn a_foreign_protocol_closes_the_connection_only() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = start(FACILITY).await;
    bounded(10, async {
        let addr = sim.addr("ups").expect("tcp");
        let mut raw = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        raw.write_all(b"GET / HTTP/1.1\r\n\r\n")
            .await
            .expect("writes");
        let mut buf = [0u8; 16];
        let n = raw.read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0, "closed without an answer");
        let mut ctx = connect(addr, 1).await;
        assert!(ctx
            .read_input_registers(0, 1)
            .await
            .expect("transport")
            .is_ok());
    })
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn broadcast_writes_apply_without_an_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = start(GATEWAY).await;
    bounded(10, async {
        let addr = sim.gateway_addr("gw").expect("gateway");
        let mut raw = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        // Unit 0, FC 6, ups model_name's first register ← "XY".
        raw.write_all(&[0, 1, 0, 0, 0, 6, 0, 6, 0, 100, b'X', b'Y'])
            .await
            .expect("writes");
        let mut buf = [0u8; 16];
        let r = tokio::time::timeout(Duration::from_millis(200), raw.read(&mut buf)).await;
        assert!(r.is_err(), "no answer to a broadcast: {r:?}");
        let Some(Value::Text(model)) = sim.value("ups-1", "model_name") else {
            panic!("a string");
        };
        assert!(model.starts_with("XY"), "{model}");
    })
    .await;
    sim.stop().await;
}
