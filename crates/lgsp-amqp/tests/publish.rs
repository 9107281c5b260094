//! The confirmed publisher against the real broker.

use lapin::BasicProperties;
use lgsp_amqp::publish::{PublishError, Publisher};
use lgsp_testkit::{Amqp, Vhost};

/// Many publishes in flight on one channel, every fourth to a key no queue binds: the
/// broker's multiple acks cover returned and delivered publishes alike, and the AMQP
/// client attaches each return to an arbitrary confirm of the frame. Each publish must
/// still learn its own fate: a returned one reported delivered would be a silent loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_publish_learns_its_own_fate_when_acks_cover_returned_and_delivered_ones() {
    let vhost = Vhost::new("returns");
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("test.ok", "amq.topic", "ok.#").await;
    let publisher = Publisher::open(&amqp.conn, 512).await.expect("publisher");

    const N: usize = 3000;
    let mut tasks = Vec::new();
    for lane in 0..4 {
        let publisher = publisher.clone();
        tasks.push(tokio::spawn(async move {
            let mut waits = Vec::new();
            for i in (lane..N).step_by(4).chain((N + lane..2 * N).step_by(4)) {
                // Every fourth message is unroutable; half of them carry no message id.
                let (key, props) = match i % 8 {
                    0 => ("none.x", BasicProperties::default()),
                    4 => ("none.x", with_id(i)),
                    _ => ("ok.x", with_id(i)),
                };
                let pending = publisher
                    .publish("amq.topic", key, b"x", props)
                    .await
                    .expect("handed over");
                waits.push(tokio::spawn(async move { (i, pending.wait().await) }));
            }
            let mut got = Vec::new();
            for w in waits {
                got.push(w.await.expect("join"));
            }
            got
        }));
    }
    let mut wrong = Vec::new();
    let mut delivered = 0;
    for t in tasks {
        for (i, result) in t.await.expect("join") {
            let unroutable = i % 4 == 0;
            match (&result, unroutable) {
                (Ok(()), false) => delivered += 1,
                (Err(PublishError::Unroutable { routing_key, .. }), true) => {
                    assert_eq!(routing_key, "none.x")
                }
                _ => wrong.push((i, format!("{result:?}"))),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} misreported, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(delivered, 2 * N * 3 / 4);
    assert_eq!(amqp.count("test.ok").await as usize, delivered);
    publisher.close().await;
}

fn with_id(i: usize) -> BasicProperties {
    BasicProperties::default().with_message_id(format!("m-{i}").into())
}
