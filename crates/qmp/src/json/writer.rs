//! JSON output byte-for-byte as QEMU writes it (qobject/json-writer.c).
//!
//! - Object members come in QEMU's QDict order: by bucket of the key's
//!   `tdb_hash` (512 buckets), and within a bucket the member added last first.
//! - Strings are ASCII: `\"` `\\` `\b` `\f` `\n` `\r` `\t`, every other
//!   control character, DEL and all non-ASCII as `\uXXXX` (upper-case hex,
//!   surrogate pairs above U+FFFF).
//! - Floating-point numbers are printed as C's `%.17g`.
//! - Separators are `", "` and `": "`; pretty output puts each member and
//!   element on a line of its own, indented four spaces per level.

use serde_json::{Map, Number, Value};

const QDICT_BUCKETS: u32 = 512;

/// QEMU's QDict hash of a key (qobject/qdict.c).
fn tdb_hash(key: &str) -> u32 {
    let bytes = key.as_bytes();
    let mut value = 0x238F_13AFu32.wrapping_mul(bytes.len() as u32);
    for (index, &byte) in bytes.iter().enumerate() {
        value = value.wrapping_add(u32::from(byte) << (index * 5 % 24));
    }
    1_103_515_243u32.wrapping_mul(value).wrapping_add(12345)
}

/// The order in which a QDict holding `keys` (inserted in the order given)
/// iterates them: indices into `keys`.
pub fn qdict_order<'k>(keys: impl Iterator<Item = &'k str>) -> Vec<usize> {
    let mut order: Vec<(u32, usize)> = keys
        .enumerate()
        .map(|(index, key)| (tdb_hash(key) % QDICT_BUCKETS, index))
        .collect();
    order.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    order.into_iter().map(|(_, index)| index).collect()
}

/// Appends `value` to `out` as QEMU would print it; `pretty` as `-mon pretty=on`.
pub fn write(value: &Value, pretty: bool, out: &mut Vec<u8>) {
    Writer { out, pretty }.value(value, 0);
}

/// `value` as a compact string.
pub fn to_string(value: &Value) -> String {
    let mut out = Vec::new();
    write(value, false, &mut out);
    // The writer emits ASCII only.
    String::from_utf8(out).unwrap_or_default()
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    pretty: bool,
}

impl Writer<'_> {
    fn value(&mut self, value: &Value, depth: usize) {
        match value {
            Value::Null => self.out.extend_from_slice(b"null"),
            Value::Bool(true) => self.out.extend_from_slice(b"true"),
            Value::Bool(false) => self.out.extend_from_slice(b"false"),
            Value::Number(number) => self.number(number),
            Value::String(text) => self.string(text),
            Value::Array(items) => {
                self.out.push(b'[');
                for (index, item) in items.iter().enumerate() {
                    self.separator(index, depth + 1);
                    self.value(item, depth + 1);
                }
                self.close(b']', depth);
            }
            Value::Object(map) => self.object(map, depth),
        }
    }

    fn object(&mut self, map: &Map<String, Value>, depth: usize) {
        self.out.push(b'{');
        let entries: Vec<(&String, &Value)> = map.iter().collect();
        for (position, index) in qdict_order(entries.iter().map(|(key, _)| key.as_str()))
            .into_iter()
            .enumerate()
        {
            let (key, item) = entries[index];
            self.separator(position, depth + 1);
            self.string(key);
            self.out.extend_from_slice(b": ");
            self.value(item, depth + 1);
        }
        self.close(b'}', depth);
    }

    /// What goes before the `index`th item of a container.
    fn separator(&mut self, index: usize, depth: usize) {
        if index > 0 {
            self.out.push(b',');
            if !self.pretty {
                self.out.push(b' ');
            }
        }
        if self.pretty {
            self.newline(depth);
        }
    }

    /// Pretty output puts every closing bracket on a line of its own, even
    /// that of an empty container.
    fn close(&mut self, bracket: u8, depth: usize) {
        if self.pretty {
            self.newline(depth);
        }
        self.out.push(bracket);
    }

    fn newline(&mut self, depth: usize) {
        self.out.push(b'\n');
        self.out.resize(self.out.len() + 4 * depth, b' ');
    }

    fn string(&mut self, text: &str) {
        self.out.push(b'"');
        for ch in text.chars() {
            match ch {
                '"' => self.out.extend_from_slice(b"\\\""),
                '\\' => self.out.extend_from_slice(b"\\\\"),
                '\u{8}' => self.out.extend_from_slice(b"\\b"),
                '\u{c}' => self.out.extend_from_slice(b"\\f"),
                '\n' => self.out.extend_from_slice(b"\\n"),
                '\r' => self.out.extend_from_slice(b"\\r"),
                '\t' => self.out.extend_from_slice(b"\\t"),
                ' '..='~' => self.out.push(ch as u8),
                // QEMU's decoder rejects noncharacters and prints U+FFFD.
                _ if !super::utf8::is_valid_codepoint(u32::from(ch)) => {
                    self.out.extend_from_slice(b"\\uFFFD")
                }
                _ => {
                    let mut units = [0u16; 2];
                    for unit in ch.encode_utf16(&mut units) {
                        self.out
                            .extend_from_slice(format!("\\u{unit:04X}").as_bytes());
                    }
                }
            }
        }
        self.out.push(b'"');
    }

    fn number(&mut self, number: &Number) {
        if let Some(integer) = number.as_i64() {
            self.out.extend_from_slice(integer.to_string().as_bytes());
        } else if let Some(integer) = number.as_u64() {
            self.out.extend_from_slice(integer.to_string().as_bytes());
        } else if let Some(float) = number.as_f64() {
            self.out.extend_from_slice(format_g17(float).as_bytes());
        }
    }
}

/// C's `printf("%.17g", value)` for a finite value.
pub fn format_g17(value: f64) -> String {
    const PRECISION: i32 = 17;
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // d.dddddddddddddddde<exp>: the 17 significant digits, correctly rounded.
    let scientific = format!("{:.16e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if value < 0.0 { "-" } else { "" };
    if (-4..PRECISION).contains(&exponent) {
        let text = if exponent >= 0 {
            let split = exponent as usize + 1;
            format!("{}.{}", &digits[..split], &digits[split..])
        } else {
            format!("0.{}{}", "0".repeat((-exponent - 1) as usize), digits)
        };
        let text = text.trim_end_matches('0').trim_end_matches('.');
        format!("{sign}{text}")
    } else {
        let fraction = digits[1..].trim_end_matches('0');
        let point = if fraction.is_empty() { "" } else { "." };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{}{point}{fraction}e{exponent_sign}{:02}",
            &digits[..1],
            exponent.abs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_as_printf_g17() {
        for (value, expected) in [
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (1e300, "1.0000000000000001e+300"),
            (1.5e300, "1.5000000000000001e+300"),
            (1.2345678901234568e22, "1.2345678901234568e+22"),
            (123456789012345678901234.0, "1.2345678901234569e+23"),
            (-0.0, "-0"),
            (1.0, "1"),
            (1e-7, "9.9999999999999995e-08"),
            (0.0001, "0.0001"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (-2.5, "-2.5"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "4.9406564584124654e-324"),
        ] {
            assert_eq!(format_g17(value), expected, "{value:e}");
        }
    }

    #[test]
    fn keys_follow_qdict_buckets() {
        let response = json!({"return": {}, "id": 1});
        assert_eq!(to_string(&response), r#"{"return": {}, "id": 1}"#);
        let error = json!({"error": {"class": "GenericError", "desc": "x"}, "id": "a"});
        assert_eq!(
            to_string(&error),
            r#"{"id": "a", "error": {"class": "GenericError", "desc": "x"}}"#
        );
        // micro and minor share a bucket: the later insertion comes first.
        let version = json!({"major": 10, "minor": 0, "micro": 2});
        assert_eq!(
            to_string(&version),
            r#"{"micro": 2, "minor": 0, "major": 10}"#
        );
        let event = json!({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}});
        assert_eq!(
            to_string(&event),
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"#
        );
    }

    #[test]
    fn strings_are_ascii_with_qemu_escapes() {
        let text = json!("\"\\/\u{8}\u{c}\n\r\t\u{1}\u{7f}é€😀\u{2028}<&>\u{fffe}\0");
        assert_eq!(
            to_string(&text),
            r#""\"\\/\b\f\n\r\t\u0001\u007F\u00E9\u20AC\uD83D\uDE00\u2028<&>\uFFFD\u0000""#
        );
    }

    #[test]
    fn containers_use_qemu_separators() {
        assert_eq!(
            to_string(
                &json!([1, {"a": []}, {}, null, true, -9223372036854775808i64, 18446744073709551615u64])
            ),
            r#"[1, {"a": []}, {}, null, true, -9223372036854775808, 18446744073709551615]"#
        );
    }
}
