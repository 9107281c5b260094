//! `lgsp watch`: print what the bus publishes on `<prefix>.out`, with headers, through an
//! exclusive auto-delete queue, so a newcomer can see it work without a management UI.

use futures_lite::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lgsp_amqp::headers::value_text;
use lgsp_amqp::names::Names;

use crate::exit;
use crate::load::load;

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    config: crate::ConfigArg,
    /// Binding key on `<prefix>.out` (default: everything).
    #[arg(default_value = "#")]
    binding: String,
    /// Stop after this many messages.
    #[arg(long)]
    count: Option<u64>,
}

pub async fn run(args: &WatchArgs) -> u8 {
    crate::logging::init();
    let Some(loaded) = load(&args.config.config) else {
        return exit::USAGE;
    };
    let broker = &loaded.config.config.broker;
    {
        let conn = match crate::connect(broker, "lgsp watch").await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let result: Result<(), lapin::Error> = async {
            let ch = conn.create_channel().await?;
            let q = ch
                .queue_declare(
                    "".into(),
                    QueueDeclareOptions {
                        exclusive: true,
                        auto_delete: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            let out = Names::new(&broker.prefix).output();
            ch.queue_bind(
                q.name().clone(),
                out.as_str().into(),
                args.binding.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
            eprintln!(
                "watching {out} with binding {} (Ctrl-C to stop)",
                args.binding
            );
            let mut consumer = ch
                .basic_consume(
                    q.name().clone(),
                    "lgsp-watch".into(),
                    BasicConsumeOptions {
                        no_ack: true,
                        ..BasicConsumeOptions::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            let mut seen = 0u64;
            while let Some(d) = consumer.next().await {
                let d = d?;
                let p = &d.properties;
                println!(
                    "--- {} {}",
                    d.routing_key.as_str(),
                    p.message_id().as_ref().map_or("", |m| m.as_str())
                );
                if let Some(ct) = p.content_type() {
                    println!("content-type: {}", ct.as_str());
                }
                if let Some(h) = p.headers() {
                    for (k, v) in h.inner() {
                        println!(
                            "{}: {}",
                            k.as_str(),
                            value_text(v).unwrap_or_else(|| format!("{v:?}"))
                        );
                    }
                }
                println!();
                println!("{}", String::from_utf8_lossy(&d.data));
                seen += 1;
                if args.count.is_some_and(|c| seen >= c) {
                    break;
                }
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("error: {e}");
                exit::UNREACHABLE
            }
        }
    }
}
