//! A RabbitMQ node of its own, started from the installed rabbitmq-server for one test:
//! its own node name, ports, data and log folders and Erlang cookie under a temporary
//! folder, so it never touches the machine's node (tests of TLS listeners, and of a
//! broker that goes away). Stopped and removed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = "/usr/lib/rabbitmq/bin";

/// Listeners and settings of a node.
#[derive(Default)]
pub struct NodeConfig {
    /// A TLS listener with this server certificate, key and CA (the CA verifies client
    /// certificates).
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// Require a client certificate signed by the CA.
    pub require_client_cert: bool,
    /// Further `rabbitmq.conf` lines (e.g. a definitions file to import at boot).
    pub extra: String,
}

pub struct RabbitNode {
    pub name: String,
    /// The plain AMQP port.
    pub port: u16,
    /// The TLS port, when configured.
    pub tls_port: Option<u16>,
    dir: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

impl RabbitNode {
    /// Start a node under `dir` (which must exist and stay until the node is dropped)
    /// and wait until every listener accepts connections.
    pub fn start(dir: &Path, config: NodeConfig) -> RabbitNode {
        let port = free_port();
        let tls_port = config.tls.as_ref().map(|_| free_port());
        let dist_port = free_port();
        let name = format!("lgsp-test-{port}@localhost");
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let cookie = home.join(".erlang.cookie");
        std::fs::write(&cookie, format!("lgsptest{port}")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400)).unwrap();
        let mut conf = format!(
            "listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\nlog.file.level = info\n"
        );
        if let (Some((cert, key, ca)), Some(tls_port)) = (&config.tls, tls_port) {
            conf.push_str(&format!(
                "listeners.ssl.default = 127.0.0.1:{tls_port}\n\
                 ssl_options.cacertfile = {}\nssl_options.certfile = {}\nssl_options.keyfile = {}\n\
                 ssl_options.verify = {}\nssl_options.fail_if_no_peer_cert = {}\n",
                ca.display(),
                cert.display(),
                key.display(),
                if config.require_client_cert {
                    "verify_peer"
                } else {
                    "verify_none"
                },
                config.require_client_cert,
            ));
        }
        conf.push_str(&config.extra);
        std::fs::write(dir.join("rabbitmq.conf"), conf).unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(
            dir.join("rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS=127.0.0.1\n",
        )
        .unwrap();
        let node = RabbitNode {
            name,
            port,
            tls_port,
            dir: dir.to_owned(),
        };
        let status = node
            .command("rabbitmq-server")
            .arg("-detached")
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .status()
            .expect("start rabbitmq-server");
        assert!(status.success(), "rabbitmq-server -detached: {status}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(port_open(port) && tls_port.is_none_or(port_open)) {
            assert!(
                Instant::now() < deadline,
                "RabbitMQ node {} did not listen within 60 s: {}",
                node.name,
                node.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        node
    }

    fn command(&self, tool: &str) -> Command {
        let mut c = Command::new(Path::new(BIN).join(tool));
        // Crash dumps (erl_crash.dump, MnesiaCore.*) land in the node's folder.
        if self.dir.is_dir() {
            c.current_dir(&self.dir);
        }
        c.env("HOME", self.dir.join("home"))
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_CONF_ENV_FILE", self.dir.join("rabbitmq-env.conf"));
        c
    }

    /// `rabbitmqctl -n <node> args...`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.command("rabbitmqctl")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "run rabbitmqctl for {} (folder {}, there: {}): {e}",
                    self.name,
                    self.dir.display(),
                    self.dir.is_dir()
                )
            })
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`.
    pub fn url(&self) -> String {
        self.url_as("guest", "guest", "%2f")
    }

    /// `amqp://<user>:<password>@127.0.0.1:<port>/<vhost>`.
    pub fn url_as(&self, user: &str, password: &str, vhost: &str) -> String {
        format!("amqp://{user}:{password}@127.0.0.1:{}/{vhost}", self.port)
    }

    /// `amqps://guest:guest@<host>:<tls port>/%2f`.
    pub fn tls_url(&self, host: &str) -> String {
        format!(
            "amqps://guest:guest@{host}:{}/%2f",
            self.tls_port.expect("the node has no TLS listener")
        )
    }

    /// The node's log (for assertion messages).
    pub fn log(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.join("log")) {
            for e in entries.flatten() {
                out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        out
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        let _ = self.ctl(&["shutdown"]);
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pid")) {
            let _ = Command::new("kill").arg("-KILL").arg(pid.trim()).status();
        }
    }
}
