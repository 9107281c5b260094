//! `lgsp apps`: API keys for sector applications, and the RabbitMQ users and topic
//! permissions that hold AMQP publishers to the same rights as the HTTP gateway.

use lgsp_amqp::names::Names;
use serde_json::json;

use crate::exit;
use crate::load::load;

#[derive(Debug, clap::Subcommand)]
pub enum AppsCommand {
    /// Print a new random API key for APP and the line to paste into its
    /// `apps.<APP>.api_key_sha256` (the key itself is shown once and never stored).
    Keygen {
        /// Application id, e.g. dkkd.
        app: String,
    },
    /// Print a RabbitMQ definitions file: one user per application, allowed to write
    /// only its publish patterns on `<prefix>.in` and to read only its own queue.
    RabbitmqDefinitions {
        #[command(flatten)]
        config: crate::ConfigArg,
        /// The vhost the bus uses.
        #[arg(long, default_value = "/")]
        vhost: String,
    },
}

pub fn run(cmd: &AppsCommand) -> u8 {
    match cmd {
        AppsCommand::Keygen { app } => keygen(app),
        AppsCommand::RabbitmqDefinitions { config, vhost } => definitions(config, vhost),
    }
}

fn keygen(app: &str) -> u8 {
    if app.is_empty()
        || !app
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        eprintln!(
            "error: application id `{app}`: use lower-case letters, digits, `_` or `-` (e.g. dkkd)"
        );
        return exit::USAGE;
    }
    let mut bytes = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut bytes) {
        eprintln!("error: the system's random source failed: {e}");
        return exit::FAILED;
    }
    let key = format!("lgsp_{}", lgsp_core::apps::hex(&bytes));
    let hash = lgsp_core::apps::key_hash_hex(&key);
    println!("{key}");
    eprintln!(
        "Give the key above to application `{app}` (shown once; lgsp keeps only its hash).\n\
         Add its hash under apps.{app}.api_key_sha256 in the configuration:\n\n\
         apps:\n  {app}:\n    api_key_sha256:\n      - \"{hash}\"\n\n\
         Keep the old hash listed until the application uses the new key, then remove it."
    );
    exit::OK
}

fn definitions(config: &crate::ConfigArg, vhost: &str) -> u8 {
    let Some(loaded) = load(&config.config) else {
        return exit::USAGE;
    };
    let c = &loaded.config.config;
    let names = Names::new(&c.broker.prefix);
    let input = names.input();
    let mut users = Vec::new();
    let mut permissions = Vec::new();
    let mut topic_permissions = Vec::new();
    for (id, app) in &c.apps {
        let user = app.amqp_user.as_deref().unwrap_or(id);
        users.push(json!({
            "name": user,
            "password_hash": "",
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": []
        }));
        permissions.push(json!({
            "user": user,
            "vhost": vhost,
            "configure": "^$",
            "write": format!("^{}$", lgsp_amqp::topic::regex_escape(&input)),
            "read": format!("^{}$", lgsp_amqp::topic::regex_escape(&names.app_queue(id))),
        }));
        let write = if app.publish.is_empty() {
            "^$".to_owned()
        } else {
            let alts: Vec<String> = app
                .publish
                .iter()
                .map(|p| lgsp_amqp::topic::to_regex(p))
                .collect();
            format!("^(?:{})$", alts.join("|"))
        };
        topic_permissions.push(json!({
            "user": user,
            "vhost": vhost,
            "exchange": input,
            "write": write,
            "read": "^$",
        }));
    }
    let defs = json!({
        "users": users,
        "vhosts": [{ "name": vhost }],
        "permissions": permissions,
        "topic_permissions": topic_permissions,
    });
    match serde_json::to_string_pretty(&defs) {
        Ok(s) => println!("{s}"),
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    }
    eprintln!(
        "Import with `rabbitmqctl import_definitions FILE`, then give each user a password \
         (`rabbitmqctl change_password APP PASSWORD`); users are created without one."
    );
    exit::OK
}
