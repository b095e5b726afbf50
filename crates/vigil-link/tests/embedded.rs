//! The link over vigil-link's embedded rumqttd broker on loopback: every scenario of
//! `common::scenarios`.

mod common;

use common::scenarios;
use common::BrokerKind::Embedded as KIND;

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

/// A broker URL with an IPv6 literal (`mqtt://[::1]:PORT`, the form the parsers once
/// disagreed on) links a child to its parent over the IPv6 loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_literal_url_links_over_loopback() {
    common::bounded(async {
        common::init_tracing();
        let port = std::net::TcpListener::bind("[::1]:0")
            .and_then(|l| l.local_addr())
            .expect("a free port on ::1")
            .port();
        let listen = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
        let broker = vigil_link::EmbeddedBroker::start(listen).expect("broker on [::1]");
        let url = format!("mqtt://[::1]:{port}");
        let dirs = common::Dirs::new();
        let mut parent = common::Parent::start(&url, &dirs.db("parent"));
        let mut child = common::Child::start("gw-1", &url, &dirs.db("gw-1"));
        let sent = child.record(50, vigil_core::Lane::Critical).await;
        let delivered = parent.collect(50).await;
        common::assert_exactly_once(&delivered, &sent);
        child.stop().await;
        parent.stop().await;
        broker.stop();
    })
    .await;
}
