//! Failure points for tests: `FAILPOINTS=store_outage=N/SECS` makes every store call fail
//! as if the database were unreachable for SECS seconds, starting once N failures have
//! been stored. Compiled only with the `failpoints` feature, which test builds enable;
//! without it these functions do nothing.

use crate::store::StoreError;

#[cfg(feature = "failpoints")]
mod imp {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    struct Outage {
        after: u64,
        length: Duration,
        stored: AtomicU64,
        started: Mutex<Option<Instant>>,
    }

    fn outage() -> Option<&'static Outage> {
        static O: std::sync::OnceLock<Option<Outage>> = std::sync::OnceLock::new();
        O.get_or_init(|| {
            let spec = std::env::var("FAILPOINTS").unwrap_or_default();
            spec.split(',').find_map(|s| {
                let v = s.trim().strip_prefix("store_outage=")?;
                let (n, secs) = v.split_once('/')?;
                Some(Outage {
                    after: n.trim().parse().ok()?,
                    length: Duration::from_secs(secs.trim().parse().ok()?),
                    stored: AtomicU64::new(0),
                    started: Mutex::new(None),
                })
            })
        })
        .as_ref()
    }

    pub fn down() -> bool {
        let Some(o) = outage() else { return false };
        if o.stored.load(Ordering::SeqCst) < o.after {
            return false;
        }
        let Ok(mut started) = o.started.lock() else {
            return false;
        };
        let t = *started.get_or_insert_with(|| {
            eprintln!(
                "failpoint store_outage reached: the store is unreachable for {:?}",
                o.length
            );
            Instant::now()
        });
        t.elapsed() < o.length
    }

    pub fn stored(n: usize) {
        if let Some(o) = outage() {
            o.stored.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
}

/// Fail if an injected outage is on.
#[inline]
pub(crate) fn check() -> Result<(), StoreError> {
    #[cfg(feature = "failpoints")]
    if imp::down() {
        return Err(StoreError::Injected);
    }
    Ok(())
}

/// Count stored failures (the outage starts after N).
#[inline]
pub(crate) fn stored(_n: usize) {
    #[cfg(feature = "failpoints")]
    imp::stored(_n);
}

/// `FAILPOINTS=crash=NAME`: the process exits at once (as if killed) at the point
/// `NAME`, e.g. `bulk_before_commit` (after a bulk batch's confirms, before its commit).
#[inline]
pub fn crash_point(_name: &str) {
    #[cfg(feature = "failpoints")]
    if std::env::var("FAILPOINTS")
        .unwrap_or_default()
        .split(',')
        .any(|s| s.trim().strip_prefix("crash=") == Some(_name))
    {
        eprintln!("failpoint crash={_name} reached: exiting");
        std::process::exit(137);
    }
}
