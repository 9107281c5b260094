//! Config value types with units: durations (`10s`, `1m`), sizes (`8MiB`), and numbers or
//! booleans that may arrive as strings (environment overrides are always strings).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration written as text: `500ms`, `10s`, `1m`, `1h 30m`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }
    pub const fn get(self) -> std::time::Duration {
        self.0
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        humantime::parse_duration(s.trim()).map(Duration).map_err(|e| {
            format!("invalid duration \"{s}\": {e}; write a number with a unit, e.g. 500ms, 10s, 1m, 2h")
        })
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with a unit, e.g. \"10s\" or \"1m\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
                s.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "invalid duration {n}: a unit is required, e.g. \"{n}s\" or \"{n}ms\""
                )))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "invalid duration {n}: a unit is required, e.g. \"10s\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A size in bytes written as text: `512KiB`, `8MiB`, `1GB`, or a plain number of bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn mib(n: u64) -> Self {
        ByteSize(n * 1024 * 1024)
    }
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bytesize::ByteSize(self.0).display().iec())
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| ByteSize(b.as_u64()))
            .map_err(|e| format!("invalid size \"{s}\": {e}; write e.g. 512KiB, 8MiB or 1GiB"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size, e.g. \"8MiB\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ByteSize, E> {
                s.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(n))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Deserializers for numbers and booleans that also accept their text form, because
/// environment overrides (`LGSP_BROKER__PREFETCH=64`) always arrive as strings.
pub mod lenient {
    use super::*;

    struct Num<T>(std::marker::PhantomData<T>);

    impl<T> Visitor<'_> for Num<T>
    where
        T: FromStr + TryFrom<u64> + TryFrom<i64>,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a whole number ({})", std::any::type_name::<T>())
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
            T::try_from(n).map_err(|_| E::custom(format!("number {n} is out of range")))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
            T::try_from(n).map_err(|_| E::custom(format!("number {n} is out of range")))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            s.trim().parse().map_err(|_| {
                E::custom(format!(
                    "invalid number \"{s}\": expected a whole number ({})",
                    std::any::type_name::<T>()
                ))
            })
        }
    }

    pub fn number<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr + TryFrom<u64> + TryFrom<i64>,
    {
        d.deserialize_any(Num(std::marker::PhantomData))
    }

    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        struct B;
        impl Visitor<'_> for B {
            type Value = bool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<bool, E> {
                Ok(b)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<bool, E> {
                match s.trim() {
                    "true" => Ok(true),
                    "false" => Ok(false),
                    _ => Err(E::custom(format!(
                        "invalid boolean \"{s}\": expected true or false"
                    ))),
                }
            }
        }
        d.deserialize_any(B)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_units() {
        assert_eq!("10s".parse::<Duration>().unwrap(), Duration::from_secs(10));
        assert_eq!("1m".parse::<Duration>().unwrap(), Duration::from_secs(60));
        let err = "10x".parse::<Duration>().unwrap_err();
        assert!(err.contains("invalid duration \"10x\""), "{err}");
    }

    #[test]
    fn sizes_accept_iec_units() {
        assert_eq!("8MiB".parse::<ByteSize>().unwrap(), ByteSize::mib(8));
        assert_eq!("512KiB".parse::<ByteSize>().unwrap(), ByteSize(512 * 1024));
        assert!("eight".parse::<ByteSize>().is_err());
    }
}
