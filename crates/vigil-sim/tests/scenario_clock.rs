//! Scenarios run on tokio's clock: with the clock paused, a test moves time forward and
//! reads what a client would read, without waiting and without I/O. The same seed gives
//! the same values.

mod common;

use std::time::Duration;

use common::start;
use vigil_core::Value;

const DOOR: &str = r#"
seed = 4

[[device]]
id = "door"
profile = "door-access-controller"
listen = "127.0.0.1:0"
[device.points.door2_forced]
kind = "event"
at = "45s"
duration = "30s"
[device.points.events_total]
kind = "drift"
start = 100
rate = 0.5
[device.points.mains_fail]
kind = "pulse"
every = "10s"
width = "2s"
start = "1s"

[[device]]
id = "env"
profile = "temp-humidity-sensor"
listen = "127.0.0.1:0"
[device.points.temperature]
kind = "noise"
mean = 21.0
amplitude = 0.5
stuck_at = "1m"
"#;

#[tokio::test(start_paused = true)]
async fn scenarios_follow_tokios_clock() {
    let sim = start(DOOR).await;
    let at = |point: &str| sim.value("door", point);
    assert_eq!(at("door2_forced"), Some(Value::Bool(false)));
    assert_eq!(at("mains_fail"), Some(Value::Bool(false)));
    tokio::time::advance(Duration::from_millis(1500)).await;
    assert_eq!(at("mains_fail"), Some(Value::Bool(true)));
    tokio::time::advance(Duration::from_millis(43_500)).await;
    assert_eq!(sim.elapsed(), Duration::from_secs(45));
    assert_eq!(at("door2_forced"), Some(Value::Bool(true)));
    assert_eq!(
        at("events_total"),
        Some(Value::Int(123)),
        "100 + 0.5/s × 45 s, rounded"
    );
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(at("door2_forced"), Some(Value::Bool(false)));
    // Stuck from 1 min on: the value no longer changes.
    let stuck = sim.value("env", "temperature");
    tokio::time::advance(Duration::from_secs(600)).await;
    assert_eq!(sim.value("env", "temperature"), stuck);
    sim.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_run() {
    let a = start(DOOR).await;
    let b = start(DOOR).await;
    let c = start(&DOOR.replace("seed = 4", "seed = 5")).await;
    let series = |sim: &vigil_sim::SimHandle| -> Vec<Option<Value>> {
        (0..50)
            .map(|i| sim.value_at("env", "temperature", Duration::from_millis(i * 137)))
            .collect()
    };
    assert_eq!(series(&a), series(&b));
    assert_ne!(series(&a), series(&c));
    for sim in [a, b, c] {
        sim.stop().await;
    }
}
