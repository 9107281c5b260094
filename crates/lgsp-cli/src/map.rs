//! `lgsp map`: map one payload exactly as the bus would and print the outputs.

use std::io::{Read, Write};
use std::path::PathBuf;

use lgsp_core::envelope::Envelope;
use lgsp_mapping::decode::Format;
use lgsp_mapping::dsl::{MapError, render};

use crate::exit;
use crate::load::load;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["mapping", "message_type"])))]
pub struct MapArgs {
    #[command(flatten)]
    config: crate::ConfigArg,
    /// The mapping to run, as ADAPTER.MAPPING.
    #[arg(long)]
    mapping: Option<String>,
    /// The message type: the adapter and mapping are chosen as the bus chooses them.
    #[arg(long = "type", value_name = "MESSAGE_TYPE")]
    message_type: Option<String>,
    /// Envelope fields, e.g. --envelope app_id=dkkd --envelope message_id=m-1.
    #[arg(long, value_name = "KEY=VALUE")]
    envelope: Vec<String>,
    /// Format of the payload: xml, json or a MIME type. Default: from the file, by sniffing.
    #[arg(long)]
    content_type: Option<String>,
    /// The payload file, or - for standard input.
    file: PathBuf,
}

pub fn run(args: &MapArgs) -> u8 {
    let format = match args.content_type.as_deref() {
        None => None,
        Some("xml") => Some(Format::Xml),
        Some("json") => Some(Format::Json),
        Some(ct) => match Format::from_content_type(ct) {
            Some(f) => Some(f),
            None => {
                eprintln!(
                    "error: --content-type {ct}: expected xml, json, application/xml or application/json"
                );
                return exit::USAGE;
            }
        },
    };
    let mut envelope = Envelope {
        message_id: "00000000-0000-4000-8000-000000000001".into(),
        message_type: args.message_type.clone(),
        ..Envelope::default()
    };
    for kv in &args.envelope {
        let Some((k, v)) = kv.split_once('=') else {
            eprintln!("error: --envelope {kv}: write KEY=VALUE, e.g. app_id=dkkd");
            return exit::USAGE;
        };
        if !envelope.set(k, v.to_owned()) {
            eprintln!(
                "error: --envelope {k}: unknown field; one of: {}",
                Envelope::FIELDS.join(", ")
            );
            return exit::USAGE;
        }
    }
    let Some(loaded) = load(&args.config.config) else {
        return exit::USAGE;
    };
    let limits = loaded.limits();
    let body = match read_body(&args.file, limits.max_bytes) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file.display());
            return exit::USAGE;
        }
    };
    let result = if let Some(reference) = &args.mapping {
        match loaded.adapters.resolve(reference) {
            Ok((adapter, program)) => {
                let name = program
                    .name
                    .split_once('.')
                    .map_or("", |(_, m)| m)
                    .to_owned();
                adapter.map_with(&name, &envelope, &body, format, &limits)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return exit::USAGE;
            }
        }
    } else {
        let ty = args.message_type.as_deref().unwrap_or_default();
        match loaded.adapters.for_type(ty) {
            Some(adapter) => adapter.map_message(&envelope, &body, format, &limits),
            None => {
                let known: Vec<String> = loaded
                    .adapters
                    .by_name
                    .values()
                    .flat_map(|a| a.message_types().map(str::to_owned).collect::<Vec<_>>())
                    .collect();
                eprintln!(
                    "error: no adapter maps message type `{ty}`; known types: {}",
                    known.join(", ")
                );
                return exit::USAGE;
            }
        }
    };
    match result {
        Ok(outputs) => {
            let mut out = std::io::stdout().lock();
            if out.write_all(render(&outputs).as_bytes()).is_err() {
                return exit::FAILED;
            }
            exit::OK
        }
        Err(e) => {
            report(&e);
            exit::FAILED
        }
    }
}

fn report(e: &MapError) {
    eprintln!("error [{} {}]: {e}", e.kind().as_str(), e.code());
}

/// Read the payload, refusing more than `limit` bytes before buffering them all.
fn read_body(path: &PathBuf, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    if path.as_os_str() == "-" {
        std::io::stdin().lock().take(cap).read_to_end(&mut body)?;
    } else {
        std::fs::File::open(path)?
            .take(cap)
            .read_to_end(&mut body)?;
    }
    Ok(body)
}
