//! Sector applications as the bus knows them: who is calling (an API key, kept only as
//! its SHA-256), what it may publish and what it may receive. Pure: the HTTP gateway
//! asks it who a key belongs to, the router asks it whether a publisher was entitled to
//! a routing key.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::config::{AppConfig, RateLimitConfig};
use crate::topic;

/// SHA-256 of bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// SHA-256 of an API key.
pub fn key_hash(key: &str) -> [u8; 32] {
    sha256(key.as_bytes())
}

/// SHA-256 of an API key, in lower-case hex (what `apps.<id>.api_key_sha256` lists).
pub fn key_hash_hex(key: &str) -> String {
    hex(&key_hash(key))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A SHA-256 written as 64 hex digits (either case, surrounding blanks ignored).
pub fn from_hex(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Equal in constant time (`subtle`, whose comparison the optimiser cannot turn into an
/// early exit), so timing tells nothing about where two hashes differ.
pub fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.ct_eq(b))
}

/// One application.
#[derive(Debug, Clone)]
pub struct App {
    pub id: String,
    /// The RabbitMQ user it publishes with (`amqp_user`, default its id).
    pub amqp_user: String,
    keys: Vec<[u8; 32]>,
    publish: Vec<String>,
    receive: Vec<String>,
    pub rate_limit: RateLimitConfig,
}

impl App {
    /// May this application publish `routing_key` on `<prefix>.in`?
    pub fn may_publish(&self, routing_key: &str) -> bool {
        self.publish.iter().any(|p| topic::matches(p, routing_key))
    }

    /// May this application receive the canonical event `event`?
    pub fn may_receive(&self, event: &str) -> bool {
        self.receive.iter().any(|p| topic::matches(p, event))
    }

    /// The patterns it may publish.
    pub fn publish_patterns(&self) -> &[String] {
        &self.publish
    }

    /// The patterns it may publish, for a message: `bizreg.#, dkkd.#` or `nothing`.
    pub fn publish_list(&self) -> String {
        if self.publish.is_empty() {
            "nothing".to_owned()
        } else {
            self.publish.join(", ")
        }
    }
}

/// Why a publisher was not entitled to a message: the failure record's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

/// Every configured application.
#[derive(Debug, Clone, Default)]
pub struct Apps {
    apps: Vec<App>,
}

impl Apps {
    /// From `apps:` (validated by the loader: hashes that are not 64 hex digits are
    /// reported there and skipped here). A plain key from the environment is hashed now
    /// and not kept.
    pub fn from_config(apps: &BTreeMap<String, AppConfig>) -> Apps {
        let apps = apps
            .iter()
            .map(|(id, c)| {
                let mut keys: Vec<[u8; 32]> = c
                    .api_key_sha256
                    .iter()
                    .filter_map(|h| from_hex(h))
                    .collect();
                if let Some(k) = &c.api_key
                    && !k.expose().is_empty()
                {
                    keys.push(key_hash(k.expose()));
                }
                App {
                    id: id.clone(),
                    amqp_user: c.amqp_user.clone().unwrap_or_else(|| id.clone()),
                    keys,
                    publish: c.publish.clone(),
                    receive: c.receive.clone(),
                    rate_limit: c.rate_limit,
                }
            })
            .collect();
        Apps { apps }
    }

    /// The application holding `key`. Every stored hash is compared, in constant time,
    /// whatever matches first.
    pub fn identify(&self, key: &str) -> Option<&App> {
        let h = key_hash(key);
        let mut found = None;
        for app in &self.apps {
            for k in &app.keys {
                if ct_eq(k, &h) && found.is_none() {
                    found = Some(app);
                }
            }
        }
        found
    }

    /// The application `id`.
    pub fn get(&self, id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// Whether a message that reached `<prefix>.in` over AMQP was published by someone
    /// entitled to its routing key. `user_id` is the property RabbitMQ checked against
    /// the publishing connection's user; `bus_users` are the users lgsp itself connects
    /// with (the gateway and `lgsp publish`), trusted to name an application in `app_id`.
    ///
    /// - `user_id` of an application's `amqp_user`: that application's rights apply;
    /// - `user_id` of the bus, or none: the application `app_id` names, if any, and
    ///   without one (an anonymous publisher) the broker's permissions are the guard;
    /// - any other `user_id`: a user the bus does not know, refused.
    pub fn check_amqp(
        &self,
        user_id: Option<&str>,
        app_id: Option<&str>,
        bus_users: &[String],
        routing_key: &str,
    ) -> Result<(), Denied> {
        let (app, how) = match user_id {
            Some(u) if !bus_users.iter().any(|b| b == u) => {
                match self.apps.iter().find(|a| a.amqp_user == u) {
                    Some(a) => (a, format!("AMQP user `{u}`")),
                    None => {
                        return Err(Denied(format!(
                            "AMQP user `{u}` is not the user of any application (apps.<id>.amqp_user, default the application id) nor the bus's own: it may publish nothing; add it to `apps`, or publish as an application"
                        )));
                    }
                }
            }
            _ => match app_id.and_then(|id| self.get(id)) {
                Some(a) => (a, "app_id".to_owned()),
                None => return Ok(()),
            },
        };
        if app.may_publish(routing_key) {
            return Ok(());
        }
        Err(Denied(format!(
            "application `{}` ({how}) may not publish routing key `{routing_key}` (it may publish: {}); publish under one of them, or add a pattern to apps.{}.publish",
            app.id,
            app.publish_list(),
            app.id
        )))
    }

    pub fn iter(&self) -> impl Iterator<Item = &App> {
        self.apps.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn apps() -> Apps {
        let mut m = BTreeMap::new();
        m.insert(
            "dkkd".to_owned(),
            AppConfig {
                api_key_sha256: vec![key_hash_hex("old-key-0123456789"), "zz".into()],
                api_key: Some(Secret::new("new-key-0123456789")),
                publish: vec!["bizreg.#".into()],
                receive: vec!["lgsp.invoice.*".into()],
                ..AppConfig::default()
            },
        );
        m.insert(
            "thue".to_owned(),
            AppConfig {
                api_key_sha256: vec![key_hash_hex("tax-key-0123456789")],
                publish: vec!["tax.einvoice.*".into()],
                ..AppConfig::default()
            },
        );
        Apps::from_config(&m)
    }

    #[test]
    fn a_key_identifies_its_application_and_both_keys_of_a_rotation_work() {
        let a = apps();
        assert_eq!(a.identify("old-key-0123456789").unwrap().id, "dkkd");
        assert_eq!(a.identify("new-key-0123456789").unwrap().id, "dkkd");
        assert_eq!(a.identify("tax-key-0123456789").unwrap().id, "thue");
        assert!(a.identify("zz").is_none());
        assert!(a.identify("").is_none());
    }

    #[test]
    fn publish_and_receive_rights_follow_the_patterns() {
        let a = apps();
        let dkkd = a.get("dkkd").unwrap();
        assert!(dkkd.may_publish("bizreg.enterprise.registered"));
        assert!(!dkkd.may_publish("tax.einvoice.issued"));
        assert!(dkkd.may_receive("lgsp.invoice.issued"));
        assert!(!dkkd.may_receive("lgsp.enterprise.registered"));
        let thue = a.get("thue").unwrap();
        assert!(
            !thue.may_receive("lgsp.invoice.issued"),
            "no receive patterns: nothing"
        );
    }

    #[test]
    fn an_amqp_publisher_is_held_to_its_applications_rights() {
        let mut m = BTreeMap::new();
        m.insert(
            "dkkd".to_owned(),
            AppConfig {
                publish: vec!["bizreg.#".into()],
                ..AppConfig::default()
            },
        );
        m.insert(
            "thue".to_owned(),
            AppConfig {
                amqp_user: Some("gdt-publisher".into()),
                publish: vec!["tax.#".into()],
                ..AppConfig::default()
            },
        );
        let a = Apps::from_config(&m);
        let bus = ["lgsp".to_owned()];
        let check =
            |user: Option<&str>, app: Option<&str>, key: &str| a.check_amqp(user, app, &bus, key);
        // The user is the application's (its id by default, or its amqp_user).
        assert!(check(Some("dkkd"), None, "bizreg.enterprise.registered").is_ok());
        assert!(check(Some("gdt-publisher"), None, "tax.einvoice.issued").is_ok());
        let denied = check(Some("dkkd"), None, "tax.einvoice.issued").unwrap_err();
        assert!(
            denied.0.contains("`dkkd`") && denied.0.contains("bizreg.#"),
            "{denied:?}"
        );
        // A verified user outweighs what app_id claims.
        assert!(check(Some("dkkd"), Some("thue"), "tax.einvoice.issued").is_err());
        // `thue` has its own amqp_user: a user named like the application is unknown.
        assert!(check(Some("thue"), None, "tax.einvoice.issued").is_err());
        assert!(check(Some("intruder"), None, "bizreg.x").is_err());
        // The bus's own user is trusted to name the application in app_id.
        assert!(check(Some("lgsp"), Some("thue"), "tax.x").is_ok());
        assert!(check(Some("lgsp"), Some("thue"), "bizreg.x").is_err());
        assert!(check(None, Some("dkkd"), "tax.x").is_err());
        // Anonymous, or an app_id that is no application: the broker's permissions rule.
        assert!(check(None, None, "anything.at.all").is_ok());
        assert!(check(Some("lgsp"), Some("not-an-app"), "anything").is_ok());
    }

    #[test]
    fn hashes_compare_equal_only_when_every_byte_is() {
        let a = key_hash("k-0123456789");
        let mut b = a;
        assert!(ct_eq(&a, &b));
        b[31] ^= 1;
        assert!(!ct_eq(&a, &b));
        b = a;
        b[0] ^= 0x80;
        assert!(!ct_eq(&a, &b));
    }

    #[test]
    fn hex_is_lower_case_sha256() {
        assert_eq!(
            key_hash_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
