//! Byte sizes as operators write them: `1048576`, `512MiB`, `20GB`, `1.5TiB`.

/// Parses a size; decimal suffixes (kB, MB, GB, TB) are powers of 1000,
/// binary ones (KiB, MiB, GiB, TiB) powers of 1024. Case is ignored and a
/// space may separate number and unit.
pub fn parse_size(text: &str) -> Result<u64, String> {
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
            return Err(format!(
                "unknown size unit {unit:?} in {text:?} (use e.g. 512MiB or 20GB)"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a size: {text:?} (use e.g. 512MiB or 20GB)"))?;
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("size out of range: {text:?}"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("20 GB"), Ok(20_000_000_000));
        assert_eq!(parse_size("1.5TiB"), Ok(3 << 39));
        assert_eq!(parse_size("64k"), Ok(64_000));
        for bad in ["", "MiB", "12 parsecs", "-1", "1e999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
