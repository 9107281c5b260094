//! `lgsp publish`: send files to `<prefix>.in` with confirms, print each message id.

use std::path::PathBuf;

use lapin::BasicProperties;
use lgsp_amqp::names::Names;
use lgsp_amqp::publish::Publisher;
use lgsp_mapping::decode::{Format, sniff};

use crate::exit;
use crate::load::load;

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    #[command(flatten)]
    config: crate::ConfigArg,
    /// Routing key on `<prefix>.in`, e.g. bizreg.enterprise.registered.
    #[arg(long)]
    routing_key: String,
    /// Message id (only with one file); default: a new UUID per file.
    #[arg(long)]
    message_id: Option<String>,
    /// Message type; default: the routing key.
    #[arg(long = "type")]
    message_type: Option<String>,
    /// Sending system code (`app_id`).
    #[arg(long)]
    app_id: Option<String>,
    /// Payload files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub async fn run(args: &PublishArgs) -> u8 {
    crate::logging::init();
    if args.message_id.is_some() && args.files.len() > 1 {
        eprintln!("error: --message-id applies to one file; give one file or drop --message-id");
        return exit::USAGE;
    }
    let Some(loaded) = load(&args.config.config) else {
        return exit::USAGE;
    };
    let mut bodies = Vec::new();
    for f in &args.files {
        match std::fs::read(f) {
            Ok(b) => bodies.push(b),
            Err(e) => {
                eprintln!("error: {}: {e}", f.display());
                return exit::USAGE;
            }
        }
    }
    let broker = &loaded.config.config.broker;
    {
        let conn = match crate::connect(broker, "lgsp publish").await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let publisher = match Publisher::open(&conn, 64).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::UNREACHABLE;
            }
        };
        let exchange = Names::new(&broker.prefix).input();
        let mut code = exit::OK;
        for (file, body) in args.files.iter().zip(&bodies) {
            let id = args
                .message_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let content_type = match sniff(body) {
                Some(Format::Json) => "application/json",
                _ => "application/xml",
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut props = BasicProperties::default()
                .with_message_id(id.as_str().into())
                .with_content_type(content_type.into())
                .with_type(
                    args.message_type
                        .as_deref()
                        .unwrap_or(&args.routing_key)
                        .into(),
                )
                .with_timestamp(now);
            if let Some(a) = &args.app_id {
                props = props.with_app_id(a.as_str().into());
            }
            match publisher
                .publish_confirmed(&exchange, &args.routing_key, body, props)
                .await
            {
                Ok(()) => println!("{id}"),
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    code = exit::FAILED;
                }
            }
        }
        let _ = conn.close(200, "done".into()).await;
        code
    }
}
