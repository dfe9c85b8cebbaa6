//! Byte sizes as operators write them: `1048576`, `512MiB`, `20GB`,
//! `1.5TiB`. Parsed once, where a setting is read; everything after works
//! with the number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes; in a TOML file or on a command line, a number with an
/// optional unit. Decimal units (kB, MB, GB, TB) are powers of 1000,
/// binary ones (KiB, MiB, GiB, TiB) powers of 1024; case is ignored and a
/// space may separate number and unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

/// A size that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("unknown size unit {unit:?} in {text:?} (use e.g. 512MiB or 20GB)")]
    Unit { unit: String, text: String },
    #[error("not a size: {0:?} (use e.g. 512MiB or 20GB)")]
    Number(String),
    #[error("size out of range: {0:?}")]
    Range(String),
}

const UNITS: [(&str, u64); 8] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("kB", 1_000),
];

impl ByteSize {
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(text: &str) -> Result<ByteSize, SizeError> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let unit = unit.trim().to_ascii_lowercase();
        let scale: u64 = match unit.as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "m" | "mb" => 1_000_000,
            "g" | "gb" => 1_000_000_000,
            "t" | "tb" => 1_000_000_000_000,
            "ki" | "kib" => 1 << 10,
            "mi" | "mib" => 1 << 20,
            "gi" | "gib" => 1 << 30,
            "ti" | "tib" => 1 << 40,
            _ => {
                return Err(SizeError::Unit {
                    unit,
                    text: text.to_owned(),
                })
            }
        };
        let value: f64 = number
            .parse()
            .map_err(|_| SizeError::Number(text.to_owned()))?;
        let bytes = value * scale as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(SizeError::Range(text.to_owned()));
        }
        Ok(ByteSize(bytes as u64))
    }
}

/// The largest unit that divides the size exactly, so that printing and
/// reading back gives the same number.
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, scale) in UNITS {
            if self.0 >= scale && self.0.is_multiple_of(scale) {
                return write!(f, "{}{name}", self.0 / scale);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(u64),
            Text(String),
        }
        match Written::deserialize(d)? {
            Written::Number(n) => Ok(ByteSize(n)),
            Written::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(t: &str) -> Result<u64, SizeError> {
        t.parse::<ByteSize>().map(ByteSize::bytes)
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(size("1048576"), Ok(1 << 20));
        assert_eq!(size("512MiB"), Ok(512 << 20));
        assert_eq!(size("20 GB"), Ok(20_000_000_000));
        assert_eq!(size("1.5TiB"), Ok(3 << 39));
        assert_eq!(size("64k"), Ok(64_000));
        for bad in ["", "MiB", "12 parsecs", "-1", "1e999"] {
            assert!(size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_print_back_to_the_same_number() {
        for n in [0, 1, 1000, 1024, 1536, 20 << 30, 20_000_000_000, 12345] {
            let printed = ByteSize(n).to_string();
            assert_eq!(size(&printed), Ok(n), "{printed}");
        }
        assert_eq!(ByteSize(20 << 30).to_string(), "20GiB");
        assert_eq!(ByteSize(100_000_000).to_string(), "100MB");
    }
}
