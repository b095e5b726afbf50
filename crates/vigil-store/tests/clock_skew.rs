//! Clock skew at the receiving end (`vigil_store::clamp`, docs/ARCHITECTURE.md#clocks-and-skew):
//! a hub with a clock guard clamps a child's event stamped too far ahead, relays and sends
//! back the clamped copy in the transaction that stores it; the child's store replaces its
//! own copy by it and refolds the alert; a clock resumes within the bound.

mod common;

use std::time::Duration;

use common::{acknowledged, alert_id, cleared, event, key, node, raised};
use vigil_core::{AlertEvent, AlertView, Hlc, Lane, NodeId, Severity, Timestamp};
use vigil_store::{ClockGuard, InboundBatch, Store, StoreError};
use vigil_wire::LinkEvent;

const SKEW: Duration = Duration::from_secs(300);
const HOUR_MS: u64 = 3_600_000;

fn now_ms() -> u64 {
    u64::try_from(Timestamp::now().as_millis()).expect("after 1970")
}

fn hub() -> Store {
    let mut store = Store::open_in_memory().expect("open");
    store
        .set_clock_guard(Some(&ClockGuard {
            max_skew: SKEW,
            echo_prefix: "child:".into(),
        }))
        .expect("guard");
    store
}

fn batch<'a>(
    peer: &'a NodeId,
    first_seq: u64,
    events: &'a [AlertEvent],
    bodies: Option<&'a [String]>,
) -> InboundBatch<'a> {
    InboundBatch {
        peer,
        lane: Lane::Critical,
        first_seq,
        events,
        audit: &[],
        bodies,
        directives: Default::default(),
    }
}

/// The alert events queued on `link`'s critical lane.
fn queued(store: &Store, link: &str) -> Vec<AlertEvent> {
    store
        .outbox_read(link, Lane::Critical, 0, 100, 1 << 20)
        .expect("read")
        .into_iter()
        .map(
            |r| match serde_json::from_slice(&r.payload).expect("a link event") {
                LinkEvent::Alert(e) => e,
                other => panic!("not an alert event: {other:?}"),
            },
        )
        .collect()
}

fn held(store: &Store, e: &AlertEvent) -> AlertEvent {
    store.event(e.id).expect("read").expect("held")
}

#[test]
fn an_event_an_hour_ahead_is_clamped_relayed_and_sent_back_in_one_commit() {
    let mut hub = hub();
    let gw = node("gw-1");
    let before = now_ms();
    let fence = alert_id(1);
    let raise = event(
        1,
        fence,
        before + HOUR_MS,
        raised(&key("fence"), Severity::Critical),
    );
    let clear = event(2, fence, before + HOUR_MS + 10, cleared());
    let within = event(
        3,
        alert_id(2),
        before + 1_000,
        raised(&key("door"), Severity::Minor),
    );
    let events = vec![clear.clone(), raise.clone(), within.clone()];
    let bodies: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).expect("encode"))
        .collect();
    let out = hub
        .apply_batches_and_forward(
            &[batch(&gw, 1, &events, Some(&bodies))],
            Some("parent"),
            |_, _| Some(Lane::Critical),
        )
        .expect("applied");
    let after = now_ms();
    assert_eq!(out[0].batch.ack_upto, 3);
    assert_eq!(out[0].batch.applied, 3);

    let (raise_here, clear_here) = (held(&hub, &raise), held(&hub, &clear));
    assert_eq!(raise_here.clamped_from, Some(raise.hlc));
    assert_eq!(clear_here.clamped_from, Some(clear.hlc));
    assert!(
        (before..=after).contains(&raise_here.hlc.wall),
        "{raise_here:?}"
    );
    assert!(
        clear_here.hlc > raise_here.hlc,
        "the clear still folds after the raise"
    );
    assert_eq!(held(&hub, &within), within, "within the skew: untouched");
    let mut reported: Vec<_> = out[0]
        .clamped
        .iter()
        .map(|c| (c.index, c.original))
        .collect();
    reported.sort_unstable();
    assert_eq!(reported, [(0, clear.hlc), (1, raise.hlc)]);
    assert!(out[0]
        .clamped
        .iter()
        .all(|c| c.ahead >= Duration::from_millis(HOUR_MS - 1_000)));
    let mut delivered = events.clone();
    for c in &out[0].clamped {
        c.restamp(&mut delivered[c.index]);
    }
    assert_eq!(
        delivered,
        [clear_here.clone(), raise_here.clone(), within.clone()]
    );

    // Folded, relayed up and sent back down by the clamped stamps.
    let view = hub.alert(fence).expect("read").expect("alert");
    assert_eq!(view, AlertView::fold(fence, [&raise_here, &clear_here]));
    assert_eq!(view.last, Some((clear_here.hlc, clear.id)));
    let mut up = queued(&hub, "parent");
    up.sort_by_key(AlertEvent::order_key);
    assert_eq!(up, [raise_here.clone(), clear_here.clone(), within.clone()]);
    let mut down = queued(&hub, "child:gw-1");
    down.sort_by_key(AlertEvent::order_key);
    assert_eq!(down, [raise_here.clone(), clear_here.clone()]);

    // Nothing stored lies beyond the bound: the clock resumes from what is there.
    let point = hub
        .clock_resume_point(Hlc::new(now_ms() + 300_000, 0))
        .expect("resume point");
    assert_eq!(point.last, Some(clear_here.hlc.max(within.hlc)));
    assert_eq!(point.ignored, 0);

    // A resend: duplicates, not clamped or sent back again.
    let again = hub
        .apply_batches_and_forward(&[batch(&gw, 1, &events, None)], Some("parent"), |_, _| {
            Some(Lane::Critical)
        })
        .expect("resend");
    assert_eq!((again[0].batch.duplicates, again[0].clamped.len()), (3, 0));
    assert_eq!(queued(&hub, "child:gw-1").len(), 2);
    assert_eq!(held(&hub, &raise), raise_here);
}

#[test]
fn without_a_guard_nothing_is_clamped() {
    let mut agent = Store::open_in_memory().expect("open");
    assert_eq!(agent.clock_guard().expect("read"), None);
    let gw = node("gw-1");
    let raise = event(
        1,
        alert_id(1),
        now_ms() + HOUR_MS,
        raised(&key("fence"), Severity::Critical),
    );
    let out = agent
        .apply_batches_and_forward(
            &[batch(&gw, 1, std::slice::from_ref(&raise), None)],
            None,
            |_, _| None,
        )
        .expect("applied");
    assert!(out[0].clamped.is_empty());
    assert_eq!(held(&agent, &raise), raise);
    assert!(queued(&agent, "child:gw-1").is_empty());
    let mut hub = hub();
    assert_eq!(
        hub.clock_guard().expect("read").map(|g| g.max_skew),
        Some(SKEW)
    );
    hub.set_clock_guard(None).expect("unset");
    assert_eq!(hub.clock_guard().expect("read"), None);
}

#[test]
fn the_origin_replaces_its_copy_by_the_clamped_one_and_refolds() {
    let hub_now = now_ms();
    let fence = alert_id(1);
    // The gateway's clock runs an hour fast: it holds its raise an hour ahead, and the
    // hub's acknowledgement (stamped by the hub's clock) folds *before* it.
    let raise = event(
        1,
        fence,
        hub_now + HOUR_MS,
        raised(&key("fence"), Severity::Critical),
    );
    let mut ack = event(2, fence, hub_now + 5, acknowledged());
    ack.origin = node("county-1");
    let mut gateway = Store::open_in_memory().expect("open");
    gateway
        .apply_events(std::slice::from_ref(&raise))
        .expect("raised");
    let county = node("county-1");
    gateway
        .apply_batch(&county, Lane::Critical, 1, std::slice::from_ref(&ack))
        .expect("ack");
    let before = gateway.alert(fence).expect("read").expect("alert");
    assert_eq!(before.last, Some((raise.hlc, raise.id)));

    // The hub's clamped copy comes back down.
    let mut copy = raise.clone();
    copy.clamp_to(Hlc::new(hub_now, 0));
    let out = gateway
        .apply_batch_and_forward(
            &county,
            Lane::Critical,
            2,
            std::slice::from_ref(&copy),
            None,
            |_| None,
        )
        .expect("applied");
    assert_eq!((out.batch.applied, out.batch.duplicates), (1, 0));
    assert_eq!(out.fresh, [0], "handed on: the owner reads the alert again");
    assert_eq!(held(&gateway, &raise), copy);
    let order: Vec<_> = gateway
        .alert_events(fence)
        .expect("events")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        order,
        [raise.id, ack.id],
        "the raise now folds before the ack"
    );
    let view = gateway.alert(fence).expect("read").expect("alert");
    assert_eq!(view, AlertView::fold(fence, [&copy, &ack]));
    assert!(view.acknowledged);
    assert_eq!(view.last, Some((ack.hlc, ack.id)));
    assert_eq!(gateway.max_hlc().expect("max"), Some(ack.hlc));

    // The same copy again, the original again, or a copy claiming another original: duplicates.
    let mut forged = raise.clone();
    forged.clamped_from = Some(Hlc::new(hub_now + 2 * HOUR_MS, 0));
    forged.hlc = Hlc::new(1, 0);
    for (seq, e) in [(3, &copy), (4, &raise), (5, &forged)] {
        let out = gateway
            .apply_batch(&county, Lane::Critical, seq, std::slice::from_ref(e))
            .expect("applied");
        assert_eq!((out.applied, out.duplicates), (0, 1), "{e:?}");
    }
    assert_eq!(held(&gateway, &raise), copy);
}

#[test]
fn a_stamp_at_the_top_of_the_range_is_clamped_not_a_stalled_link() {
    let gw = node("gw-1");
    let mut top = event(1, alert_id(1), 0, raised(&key("fence"), Severity::Critical));
    top.hlc = Hlc::new(u64::MAX, u16::MAX);
    let mut max = event(2, alert_id(1), 0, cleared());
    max.hlc = Hlc::MAX;
    let events = [top.clone(), max.clone()];

    // Without a guard the batch cannot be stored (and so is never acknowledged).
    let mut plain = Store::open_in_memory().expect("open");
    let err = plain
        .apply_batches_and_forward(&[batch(&gw, 1, &events, None)], None, |_, _| None)
        .expect_err("unstorable");
    assert!(matches!(err, StoreError::HlcOutOfRange { .. }), "{err}");

    let mut hub = hub();
    let out = hub
        .apply_batches_and_forward(&[batch(&gw, 1, &events, None)], None, |_, _| None)
        .expect("clamped and applied");
    assert_eq!((out[0].batch.ack_upto, out[0].clamped.len()), (2, 2));
    let max_here = hub.max_hlc().expect("max").expect("some");
    assert!(max_here.wall <= now_ms(), "{max_here}");
    assert_eq!(held(&hub, &top).clamped_from, Some(top.hlc));
}

#[test]
fn the_clock_resumes_within_the_bound_and_reports_what_it_passed_over() {
    let now = now_ms();
    let mut store = Store::open_in_memory().expect("open");
    // Stored before any guard: one alert stamped now, one far ahead.
    let here = event(
        1,
        alert_id(1),
        now,
        raised(&key("fence"), Severity::Critical),
    );
    let far = event(
        2,
        alert_id(2),
        now + 100 * HOUR_MS,
        raised(&key("door"), Severity::Minor),
    );
    store
        .apply_events(&[here.clone(), far.clone()])
        .expect("apply");
    let point = store
        .clock_resume_point(Hlc::new(now + 300_000, 0))
        .expect("resume point");
    assert_eq!(point.last, Some(here.hlc));
    assert_eq!((point.ignored, point.ignored_max), (1, Some(far.hlc)));
    assert_eq!(
        store.max_hlc().expect("max"),
        Some(far.hlc),
        "the unguarded reading"
    );
}
