//! The link over a Mosquitto broker (`/usr/sbin/mosquitto`, started and killed by the
//! tests) on loopback: every scenario of `common::scenarios`.

mod common;

use common::scenarios;
use common::BrokerKind::Mosquitto as KIND;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_5000_exactly_once() {
    common::bounded(scenarios::drains_5000_exactly_once(KIND)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_children_drain_exactly_once() {
    common::bounded(scenarios::many_children_drain_exactly_once(KIND)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_before_normal() {
    common::bounded(scenarios::critical_before_normal(KIND)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream() {
    common::bounded(scenarios::broker_restart_mid_stream(KIND)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_down_then_critical_first() {
    common::bounded(scenarios::parent_down_then_critical_first(KIND)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_restart_resumes_after_last_ack() {
    common::bounded(scenarios::child_restart_resumes_after_last_ack(KIND)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downlink_exactly_once() {
    common::bounded(scenarios::downlink_exactly_once(KIND)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_will_marks_child_offline() {
    common::bounded(scenarios::last_will_marks_child_offline(KIND)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_counted_not_fatal() {
    common::bounded(scenarios::garbage_is_counted_not_fatal(KIND)).await;
}
