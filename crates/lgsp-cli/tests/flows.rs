//! The default province flows of `config/lgsp.yaml` on the real RabbitMQ: one sample per
//! flow, received at every receiver of that flow, in the receiver's format.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use lgsp_testkit::{Amqp, Lgsp, Vhost, received_ids as ids, repo, sample};

/// The bus with the shipped configuration on a vhost of its own, ready, and a client.
async fn shipped_bus(label: &str) -> (Vhost, Lgsp, Amqp) {
    let vhost = Vhost::new(label);
    let mut bus = Lgsp::spawn(
        Path::new(env!("CARGO_BIN_EXE_lgsp")),
        &repo().join("config/lgsp.yaml"),
        &[("LGSP_BROKER__URL", vhost.url())],
    );
    bus.wait_ready();
    let amqp = Amqp::connect(&vhost.url()).await;
    (vhost, bus, amqp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_default_flow_reaches_every_receiver() {
    let (_vhost, bus, amqp) = shipped_bus("flows").await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    // The bus's own ingestor consumes lgsp.failed: watch a copy.
    amqp.bind_queue("test.failed", "lgsp.failed", "").await;

    let sends: [(&str, &str, &str, &str); 10] = [
        (
            "bizreg",
            "enterprise-registered.xml",
            "bizreg.enterprise.registered",
            "reg",
        ),
        (
            "bizreg",
            "enterprise-changed.xml",
            "bizreg.enterprise.changed",
            "chg",
        ),
        (
            "bizreg",
            "enterprise-dissolved.xml",
            "bizreg.enterprise.dissolved",
            "dis",
        ),
        (
            "bizreg",
            "enterprise-suspended.json",
            "bizreg.enterprise.status_changed",
            "sus",
        ),
        (
            "tax",
            "einvoice-tdiep-public-buyer.xml",
            "tax.einvoice.issued",
            "inv-budget",
        ),
        (
            "tax",
            "einvoice-vat-basic.xml",
            "tax.einvoice.issued",
            "inv-private",
        ),
        (
            "finance",
            "budget-allocation-schools.json",
            "finance.budget.allocated",
            "alloc",
        ),
        (
            "emis",
            "school-statistics-primary.json",
            "emis.school_statistics.reported",
            "stats",
        ),
        (
            "emis",
            "teacher-roster.json",
            "emis.teacher.listed",
            "teachers",
        ),
        (
            "emis",
            "school-profile.json",
            "emis.school.updated",
            "school",
        ),
    ];
    for (adapter, file, key, id) in sends {
        amqp.publish("lgsp.in", key, id, &sample(adapter, file))
            .await;
    }

    let tax = amqp.drain("lgsp.app.tax", 50, Duration::from_secs(5)).await;
    assert_eq!(ids(&tax), ["chg", "dis", "reg", "sus"]);
    let reg = tax
        .iter()
        .find(|r| r.message_id.as_deref() == Some("reg"))
        .unwrap();
    assert!(
        String::from_utf8_lossy(&reg.body).contains("<DoanhNghiepDangKy"),
        "the tax office gets its XML feed"
    );

    let finance = amqp
        .drain("lgsp.app.finance", 50, Duration::from_secs(5))
        .await;
    // A TDiep envelope is a batch: its invoice gets the child id of the envelope's.
    let invoice_id = lgsp_core::envelope::child_message_id("inv-budget", 0);
    let mut want = vec![
        "chg".to_owned(),
        "dis".into(),
        invoice_id.clone(),
        "reg".into(),
        "school".into(),
        "teachers".into(),
    ];
    want.sort();
    assert_eq!(
        ids(&finance),
        want,
        "the private buyer's invoice does not go to finance"
    );
    let inv = finance
        .iter()
        .find(|r| r.message_id.as_deref() == Some(invoice_id.as_str()))
        .unwrap();
    assert!(
        String::from_utf8_lossy(&inv.body).starts_with("<?xml"),
        "finance gets invoices in its XML"
    );

    let emis = amqp
        .drain("lgsp.app.emis", 50, Duration::from_secs(5))
        .await;
    assert!(emis.len() >= 2, "one document per school: {}", emis.len());
    assert!(
        emis.iter()
            .all(|r| r.correlation_id.as_deref() == Some("alloc"))
    );

    let reporting = amqp
        .drain("lgsp.app.reporting", 50, Duration::from_secs(5))
        .await;
    assert_eq!(ids(&reporting), ["stats"]);
    assert!(String::from_utf8_lossy(&reporting[0].body).contains("<BaoCaoThongKeTruong"));

    let out = amqp.drain("test.out", 100, Duration::from_secs(5)).await;
    assert!(
        out.len() >= 10,
        "every event also goes to lgsp.out canonically: {}",
        out.len()
    );
    assert_eq!(amqp.count("test.failed").await, 0, "{}", bus.log());
    bus.terminate();
}

/// A list form (two registrations in a `DanhSachHoSo`) and a cooperative's registration
/// travel the default flow of registrations: each registration of the list reaches the
/// tax office as a batch child of the input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_registrations_reaches_the_receivers_item_by_item() {
    let (_vhost, _bus, amqp) = shipped_bus("flows-list").await;
    let key = "bizreg.enterprise.registered";
    let list = sample("bizreg", "enterprises-registered-list.xml");
    amqp.publish("lgsp.in", key, "list", &list).await;
    let coop = sample("bizreg", "cooperative-registered.json");
    amqp.publish("lgsp.in", key, "coop", &coop).await;

    let tax = amqp.drain("lgsp.app.tax", 3, Duration::from_secs(10)).await;
    let mut want = vec![
        "coop".to_owned(),
        lgsp_core::envelope::child_message_id("list", 0),
        lgsp_core::envelope::child_message_id("list", 1),
    ];
    want.sort();
    assert_eq!(ids(&tax), want);
    for r in &tax {
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains("<DoanhNghiepDangKy"), "{body}");
        if r.message_id.as_deref() != Some("coop") {
            assert_eq!(r.correlation_id.as_deref(), Some("list"));
        }
    }
    let all = tax
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect::<String>();
    for form in ["DNTN", "CTHD", "HTX"] {
        assert!(all.contains(form), "legal form {form} in the feed: {all}");
    }
}
