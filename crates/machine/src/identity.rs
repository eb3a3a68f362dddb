//! What names a VM: `-name` and `-uuid`.

use std::fmt;
use std::str::FromStr;

/// A UUID, as `-uuid` takes it and `query-uuid` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Uuid([u8; 16]);

impl FromStr for Uuid {
    type Err = ();

    /// QEMU's form only: 36 characters, hex digits grouped 8-4-4-4-12.
    fn from_str(text: &str) -> Result<Self, ()> {
        let bytes = text.as_bytes();
        if bytes.len() != 36 {
            return Err(());
        }
        let mut uuid = [0u8; 16];
        let mut digits = Vec::with_capacity(32);
        for (index, &byte) in bytes.iter().enumerate() {
            if matches!(index, 8 | 13 | 18 | 23) {
                if byte != b'-' {
                    return Err(());
                }
            } else {
                digits.push(char::from(byte).to_digit(16).ok_or(())? as u8);
            }
        }
        for (slot, pair) in uuid.iter_mut().zip(digits.chunks(2)) {
            *slot = pair[0] << 4 | pair[1];
        }
        Ok(Uuid(uuid))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, byte) in self.0.iter().enumerate() {
            if matches!(index, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_in_lower_case() {
        let uuid: Uuid = "6A1E4BC2-1B4F-4D5A-9E3B-00112233AABB".parse().unwrap();
        assert_eq!(uuid.to_string(), "6a1e4bc2-1b4f-4d5a-9e3b-00112233aabb");
        assert_eq!(
            Uuid::default().to_string(),
            "00000000-0000-0000-0000-000000000000"
        );
    }

    #[test]
    fn rejects_other_forms() {
        for bad in [
            "",
            "6a1e4bc21b4f4d5a9e3b00112233aabb",
            "{6a1e4bc2-1b4f-4d5a-9e3b-00112233aabb}",
            "6a1e4bc2-1b4f-4d5a-9e3b-00112233aabg",
            "6a1e4bc2+1b4f-4d5a-9e3b-00112233aabb",
            "6a1e4bc2-1b4f-4d5a-9e3b-00112233aab\u{e9}",
        ] {
            assert!(bad.parse::<Uuid>().is_err(), "{bad:?}");
        }
    }
}
