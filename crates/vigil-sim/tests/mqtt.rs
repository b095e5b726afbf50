//! The simulator's MQTT sensors against a real Mosquitto on loopback, read back by a
//! rumqttc subscriber: JSON telemetry, plain numbers, Sparkplug B (births, data by alias,
//! seq, rebirth, death, bdSeq across reconnects) and the malformed and silent faults.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{bounded, start, Broker};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use vigil_core::Value;
use vigil_sparkplug::{decode, encode, DataType, Metric, Payload, BD_SEQ, REBIRTH};

/// A subscriber to everything, forwarding `(topic, payload)`.
async fn subscriber(port: u16) -> (AsyncClient, mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let mut options = MqttOptions::new("test-subscriber", "127.0.0.1", port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    client
        .subscribe("#", QoS::AtMostOnce)
        .await
        .expect("subscribe");
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready = Some(ready_tx);
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    bounded(10, ready_rx).await.expect("subscribed");
    (client, rx)
}

fn facility(url: &str) -> String {
    format!(
        r#"
seed = 9

[[mqtt]]
id = "env-1"
url = "{url}"
interval = "100ms"
[mqtt.fields.temp]
kind = "noise"
mean = 21.5
amplitude = 0.2
[mqtt.fields.rh]
kind = "constant"
value = 40.1
[mqtt.fields.door]
kind = "event"
at = "0s"

[[mqtt]]
id = "cell-2"
url = "{url}"
format = "number"
interval = "100ms"
[mqtt.fields.temp]
kind = "constant"
value = 19.5

[[mqtt]]
id = "gw-sim"
url = "{url}"
format = "sparkplug_b"
group = "facility"
interval = "100ms"
[mqtt.fields.supply]
kind = "constant"
value = 24.1
[[mqtt.device]]
id = "door-1"
[mqtt.device.fields.open]
kind = "event"
at = "0s"
[mqtt.device.fields.count]
kind = "constant"
value = 7

[[mqtt]]
id = "bad-1"
url = "{url}"
interval = "50ms"
topic = "facility/bad/{{id}}"
[mqtt.fields.x]
kind = "constant"
value = 1
[[mqtt.fault]]
kind = "malformed"
probability = 0.5

[[mqtt]]
id = "quiet-1"
url = "{url}"
interval = "50ms"
[mqtt.fields.x]
kind = "constant"
value = 1
[[mqtt.fault]]
kind = "silent"
"#
    )
}

#[derive(Default)]
struct Seen {
    json: Vec<serde_json::Value>,
    numbers: Vec<f64>,
    bad_good: usize,
    bad_garbage: usize,
    quiet: usize,
    births: Vec<Payload>,
    dbirths: Vec<Payload>,
    ndata: Vec<Payload>,
    ddata: Vec<Payload>,
    deaths: Vec<Payload>,
}

impl Seen {
    fn take(&mut self, topic: &str, payload: &[u8]) {
        match topic {
            "facility/env/env-1/telemetry" => {
                self.json
                    .push(serde_json::from_slice(payload).expect("JSON telemetry"));
            }
            "facility/env/cell-2/temp" => self.numbers.push(
                std::str::from_utf8(payload)
                    .expect("text")
                    .parse()
                    .expect("a plain number"),
            ),
            "facility/bad/bad-1" => {
                if serde_json::from_slice::<serde_json::Value>(payload).is_ok() {
                    self.bad_good += 1;
                } else {
                    self.bad_garbage += 1;
                }
            }
            "facility/env/quiet-1/telemetry" => self.quiet += 1,
            "spBv1.0/facility/NBIRTH/gw-sim" => self.births.push(decode(payload).expect("NBIRTH")),
            "spBv1.0/facility/DBIRTH/gw-sim/door-1" => {
                self.dbirths.push(decode(payload).expect("DBIRTH"));
            }
            "spBv1.0/facility/NDATA/gw-sim" => self.ndata.push(decode(payload).expect("NDATA")),
            "spBv1.0/facility/DDATA/gw-sim/door-1" => {
                self.ddata.push(decode(payload).expect("DDATA"));
            }
            "spBv1.0/facility/NDEATH/gw-sim" => self.deaths.push(decode(payload).expect("NDEATH")),
            _ => {}
        }
    }

    fn enough(&self) -> bool {
        self.json.len() >= 3
            && self.numbers.len() >= 3
            && self.bad_garbage >= 1
            && self.bad_good >= 1
            && !self.births.is_empty()
            && !self.dbirths.is_empty()
            && self.ndata.len() >= 3
            && self.ddata.len() >= 3
    }
}

/// Receives until `done` says so.
async fn until(
    rx: &mut mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    seen: &mut Seen,
    done: impl Fn(&Seen) -> bool,
) {
    while !done(seen) {
        let (topic, payload) = rx.recv().await.expect("the subscriber runs");
        seen.take(&topic, &payload);
    }
}

fn metric<'a>(p: &'a Payload, name: &str) -> &'a Metric {
    p.metrics
        .iter()
        .find(|m| m.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("metric {name} in {p:?}"))
}

fn rebirth() -> Payload {
    Payload::new(
        0,
        None,
        vec![
            Metric::with_value(REBIRTH, None, DataType::Boolean, Value::Bool(true))
                .expect("metric"),
        ],
    )
}

#[tokio::test]
async fn json_numbers_sparkplug_and_faults_reach_a_real_broker() {
    let broker = Broker::start();
    let (client, mut rx) = subscriber(broker.port).await;
    let sim = start(&facility(&broker.url())).await;
    let mut seen = Seen::default();
    bounded(20, until(&mut rx, &mut seen, Seen::enough)).await;

    // JSON telemetry.
    let now = vigil_core::Timestamp::now().as_millis();
    for j in &seen.json {
        let ts = j["ts"].as_i64().expect("ts");
        assert!((now - 60_000..=now + 1000).contains(&ts), "{j}");
        let temp = j["temp"].as_f64().expect("temp");
        assert!((21.3..=21.7).contains(&temp), "{j}");
        assert_eq!(j["rh"], serde_json::json!(40.1));
        assert_eq!(j["door"], serde_json::json!(true));
    }
    // Plain numbers.
    assert!(
        seen.numbers.iter().all(|n| *n == 19.5),
        "{:?}",
        seen.numbers
    );

    // Sparkplug: NBIRTH with bdSeq, names, aliases and datatypes; DBIRTH; then data by alias.
    let nbirth = &seen.births[0];
    assert_eq!(nbirth.seq, Some(0));
    assert_eq!(
        metric(nbirth, BD_SEQ).value().expect("typed"),
        Some(Value::Int(0))
    );
    let supply = metric(nbirth, "supply");
    assert_eq!(supply.data_type().expect("known"), Some(DataType::Double));
    assert_eq!(supply.value().expect("typed"), Some(Value::Float(24.1)));
    let dbirth = &seen.dbirths[0];
    assert_eq!(dbirth.seq, Some(1));
    let open = metric(dbirth, "open");
    assert_eq!(open.data_type().expect("known"), Some(DataType::Boolean));
    assert_eq!(open.value().expect("typed"), Some(Value::Bool(true)));
    let count = metric(dbirth, "count");
    assert_eq!(count.value().expect("typed"), Some(Value::Int(7)));
    let (supply_alias, open_alias) = (supply.alias.expect("alias"), open.alias.expect("alias"));
    assert_ne!(supply_alias, open_alias);
    for d in &seen.ndata {
        assert!(
            d.metrics.iter().all(|m| m.name.is_none()),
            "data by alias only"
        );
        assert_eq!(d.metrics[0].alias, Some(supply_alias));
        assert_eq!(
            d.metrics[0].value_as(DataType::Double).expect("typed"),
            Some(Value::Float(24.1))
        );
    }
    // seq: NDATA and DDATA alternate, each one more than the message before.
    let mut seqs: Vec<u64> = seen
        .ndata
        .iter()
        .chain(&seen.ddata)
        .filter_map(|p| p.seq)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs[0], 2, "after NBIRTH 0 and DBIRTH 1");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");

    // Faults: garbage now and then; a silent sensor publishes nothing.
    assert_eq!(seen.quiet, 0);
    let bad = sim.mqtt_stats("bad-1").expect("sensor");
    assert!(bad.malformed >= 1, "{bad:?}");
    let quiet = sim.mqtt_stats("quiet-1").expect("sensor");
    assert!(quiet.suppressed >= 1 && quiet.published == 0, "{quiet:?}");
    assert_eq!(sim.mqtt_stats("env-1").expect("sensor").connections, 1);

    // A host asks for a rebirth: NBIRTH again with seq 0, then DBIRTH.
    let births_before = seen.births.len();
    client
        .publish(
            "spBv1.0/facility/NCMD/gw-sim",
            QoS::AtLeastOnce,
            false,
            encode(&rebirth()),
        )
        .await
        .expect("publish");
    bounded(
        10,
        until(&mut rx, &mut seen, |s| s.births.len() > births_before),
    )
    .await;
    assert_eq!(seen.births[births_before].seq, Some(0));

    // A clean stop announces the node's death with the birth's bdSeq.
    sim.stop().await;
    bounded(10, until(&mut rx, &mut seen, |s| !s.deaths.is_empty())).await;
    let death = &seen.deaths[0];
    assert_eq!(death.seq, None);
    assert_eq!(
        metric(death, BD_SEQ).value().expect("typed"),
        Some(Value::Int(0))
    );
    drop(broker);
}

#[tokio::test]
async fn sensors_reconnect_after_the_broker_restarts_with_the_next_bd_seq() {
    let broker = Broker::start();
    let port = broker.port;
    let sim = start(&format!(
        r#"
[[mqtt]]
id = "gw-sim"
url = "{}"
format = "sparkplug_b"
group = "facility"
interval = "100ms"
[mqtt.fields.supply]
kind = "constant"
value = 24.1
"#,
        broker.url()
    ))
    .await;
    bounded(10, async {
        while sim.mqtt_stats("gw-sim").expect("sensor").connections < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    drop(broker);
    let broker = Broker::start_on(port);
    let (client, mut rx) = subscriber(port).await;
    // The node may have reborn before the subscription: ask for a rebirth, which carries the
    // session's bdSeq too (if the node is not connected yet, its own NBIRTH comes later).
    client
        .publish(
            "spBv1.0/facility/NCMD/gw-sim",
            QoS::AtLeastOnce,
            false,
            encode(&rebirth()),
        )
        .await
        .expect("publish");
    let mut births: HashMap<u64, Payload> = HashMap::new();
    bounded(20, async {
        while births.is_empty() {
            let (topic, payload) = rx.recv().await.expect("subscriber");
            if topic == "spBv1.0/facility/NBIRTH/gw-sim" {
                let p = decode(&payload).expect("NBIRTH");
                let bd = metric(&p, BD_SEQ).value().expect("typed");
                let Some(Value::Int(bd)) = bd else {
                    panic!("bdSeq is an integer");
                };
                births.insert(u64::try_from(bd).expect("positive"), p);
            }
        }
    })
    .await;
    assert!(
        births.contains_key(&1),
        "the second session's bdSeq: {:?}",
        births.keys()
    );
    assert!(sim.mqtt_stats("gw-sim").expect("sensor").connections >= 2);
    sim.stop().await;
    drop(broker);
}
