//! QEMU's `key=value,...` option lists: QemuOpts (for `-chardev`, `-mon`,
//! `-name`, `-accel` and the tail of `-qmp unix:`) and keyval (`-machine`).

use super::CliError;

/// A parsed list: keys in order, duplicates resolved as QEMU resolves them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Opts {
    entries: Vec<(String, String)>,
    /// Short-form booleans used (`server`, `nowait`), for QEMU's warning.
    pub short_forms: Vec<(String, &'static str)>,
}

/// How a list's keys are checked.
#[derive(Debug)]
pub struct Schema<'a> {
    /// The key a leading item without `=` is the value of.
    pub implied: Option<&'a str>,
    pub strings: &'a [&'a str],
    pub booleans: &'a [&'a str],
}

impl Schema<'_> {
    fn knows(&self, key: &str) -> bool {
        self.strings.contains(&key) || self.booleans.contains(&key)
    }
}

/// Splits at single commas; `,,` is a literal comma; a trailing comma is allowed.
fn split_items(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            ',' if chars.peek() == Some(&',') => {
                chars.next();
                current.push(',');
            }
            ',' => items.push(std::mem::take(&mut current)),
            _ => current.push(ch),
        }
    }
    if !current.is_empty() || items.is_empty() {
        items.push(current);
    }
    items
}

/// Parses a QemuOpts list; `location` names the option in errors.
pub fn parse(text: &str, schema: &Schema<'_>, location: &str) -> Result<Opts, CliError> {
    let mut opts = Opts::default();
    for (index, item) in split_items(text).into_iter().enumerate() {
        let (key, value) = match item.split_once('=') {
            Some((key, value)) => (key.to_string(), value.to_string()),
            None if index == 0 && schema.implied.is_some() => {
                (schema.implied.unwrap_or_default().to_string(), item)
            }
            None => match item.strip_prefix("no") {
                Some(key) if schema.booleans.contains(&key) => {
                    opts.short_forms.push((item.clone(), "off"));
                    (key.to_string(), "off".to_string())
                }
                _ => {
                    opts.short_forms.push((item.clone(), "on"));
                    (item, "on".to_string())
                }
            },
        };
        if !schema.knows(&key) {
            return Err(CliError::at(location, format!("Invalid parameter '{key}'")));
        }
        if schema.booleans.contains(&key.as_str()) {
            parse_bool(&key, &value).map_err(|message| CliError::at(location, message))?;
        }
        opts.set(key, value);
    }
    Ok(opts)
}

/// Parses `-machine`'s keyval list: the leading item without `=` is the type.
pub fn parse_keyval(text: &str, implied: &str, location: &str) -> Result<Opts, CliError> {
    let mut opts = Opts::default();
    for (index, item) in split_items(text).into_iter().enumerate() {
        match item.split_once('=') {
            Some((key, value)) => opts.set(key.to_string(), value.to_string()),
            // The implied value cannot hold an escaped comma.
            None if index == 0 && item.contains(',') => {
                return Err(CliError::at(location, "Invalid parameter ''"));
            }
            None if index == 0 => opts.set(implied.to_string(), item),
            None => {
                return Err(CliError::at(
                    location,
                    format!("Expected '=' after parameter '{item}'"),
                ))
            }
        }
    }
    Ok(opts)
}

/// QEMU's boolean spellings.
pub fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "on" | "yes" | "true" | "y" => Ok(true),
        "off" | "no" | "false" | "n" => Ok(false),
        _ => Err(format!("Parameter '{key}' expects 'on' or 'off'")),
    }
}

impl Opts {
    /// A list from keys and values already split (a JSON argument's).
    pub fn from_entries(entries: Vec<(String, String)>) -> Opts {
        let mut opts = Opts::default();
        for (key, value) in entries {
            opts.set(key, value);
        }
        opts
    }

    /// The last value wins, except for `id`, where the first does.
    fn set(&mut self, key: String, value: String) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(_) if key == "id" => {}
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value.as_str())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A boolean value already checked by [`parse`].
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(|value| parse_bool(key, value).ok())
    }

    /// A `-device` of `model` has only the properties `known` (besides
    /// `driver` and `id`), or QEMU's error names the first other one.
    pub fn check_properties(
        &self,
        model: &str,
        known: &[&str],
        location: &str,
    ) -> Result<(), CliError> {
        match self
            .keys()
            .find(|key| !matches!(*key, "driver" | "id") && !known.contains(key))
        {
            Some(key) => Err(CliError::at(
                location,
                format!("Property '{model}.{key}' not found"),
            )),
            None => Ok(()),
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(key, _)| key.as_str())
    }

    /// Merges a later list into this one, per key.
    pub fn merge(&mut self, later: Opts) {
        for (key, value) in later.entries {
            self.set(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOCKET: Schema<'static> = Schema {
        implied: Some("path"),
        strings: &["path", "id"],
        booleans: &["server", "wait"],
    };

    #[test]
    fn commas_implied_keys_and_short_forms() {
        let opts = parse("/tmp/a,,b,server,nowait", &SOCKET, "-qmp x").unwrap();
        assert_eq!(opts.get("path"), Some("/tmp/a,b"));
        assert_eq!(opts.flag("server"), Some(true));
        assert_eq!(opts.flag("wait"), Some(false));
        assert_eq!(
            opts.short_forms,
            [("server".into(), "on"), ("nowait".into(), "off")]
        );
        let opts = parse("path=/x,server=yes,wait=n,", &SOCKET, "-qmp x").unwrap();
        assert_eq!(opts.flag("server"), Some(true));
        assert_eq!(opts.flag("wait"), Some(false));
    }

    #[test]
    fn duplicates_resolve_like_qemu() {
        let opts = parse("id=c,path=/a,id=d,path=/b", &SOCKET, "-chardev x").unwrap();
        assert_eq!(opts.get("id"), Some("c"));
        assert_eq!(opts.get("path"), Some("/b"));
    }

    #[test]
    fn errors_name_the_parameter() {
        let error = parse("/a,bogus=1", &SOCKET, "-qmp unix:/a,bogus=1").unwrap_err();
        assert_eq!(
            error.to_string(),
            "-qmp unix:/a,bogus=1: Invalid parameter 'bogus'"
        );
        let error = parse("/a,server=1", &SOCKET, "L").unwrap_err();
        assert_eq!(
            error.to_string(),
            "L: Parameter 'server' expects 'on' or 'off'"
        );
        let error = parse("/a,=x", &SOCKET, "L").unwrap_err();
        assert_eq!(error.to_string(), "L: Invalid parameter ''");
    }

    #[test]
    fn keyval_for_machine() {
        let opts = parse_keyval("none,accel=kvm:tcg", "type", "L").unwrap();
        assert_eq!(opts.get("type"), Some("none"));
        assert_eq!(opts.get("accel"), Some("kvm:tcg"));
        assert_eq!(
            parse_keyval("none,accel", "type", "L")
                .unwrap_err()
                .to_string(),
            "L: Expected '=' after parameter 'accel'"
        );
    }
}
