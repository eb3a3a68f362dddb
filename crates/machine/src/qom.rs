//! The machine's QOM objects as `qom-get` and `qom-set` reach them: by an
//! absolute path, or by a partial path that ends exactly one object's
//! path (empty components, as in `//a/b/`, count for nothing).

use qmp::json::Value;
use qmp::{ErrorClass, QmpError};

/// An object in the QOM tree.
pub trait QomObject {
    fn path(&self) -> &str;
    fn type_name(&self) -> &str;
    /// `None` when it has no such property.
    fn get(&self, property: &str) -> Option<Result<Value, QmpError>>;
    /// `None` when it has no such property; read-only ones refuse.
    fn set(&self, property: &str, value: &Value) -> Option<Result<(), QmpError>>;
}

fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|part| !part.is_empty()).collect()
}

/// The object `path` names among `objects`; an ambiguous partial path
/// names none, as in QEMU's qom-get.
fn resolve<'o>(objects: &[&'o dyn QomObject], path: &str) -> Result<&'o dyn QomObject, QmpError> {
    let wanted = components(path);
    let absolute = path.starts_with('/');
    let mut matching = objects.iter().filter(|object| {
        let parts = components(object.path());
        match absolute {
            true => parts == wanted,
            false => !wanted.is_empty() && parts.ends_with(&wanted),
        }
    });
    match (matching.next(), matching.next()) {
        (Some(object), None) => Ok(*object),
        _ => Err(QmpError::new(
            ErrorClass::DeviceNotFound,
            format!("Device '{path}' not found"),
        )),
    }
}

pub fn not_writable(object: &dyn QomObject, property: &str) -> QmpError {
    QmpError::generic(format!(
        "Property '{}.{property}' is not writable",
        object.type_name()
    ))
}

fn no_property(object: &dyn QomObject, property: &str) -> QmpError {
    QmpError::generic(format!(
        "Property '{}.{property}' not found",
        object.type_name()
    ))
}

pub fn get(objects: &[&dyn QomObject], path: &str, property: &str) -> Result<Value, QmpError> {
    let object = resolve(objects, path)?;
    if property == "type" {
        return Ok(Value::from(object.type_name()));
    }
    object
        .get(property)
        .unwrap_or_else(|| Err(no_property(object, property)))
}

pub fn set(
    objects: &[&dyn QomObject],
    path: &str,
    property: &str,
    value: &Value,
) -> Result<(), QmpError> {
    let object = resolve(objects, path)?;
    if property == "type" {
        return Err(not_writable(object, property));
    }
    object
        .set(property, value)
        .unwrap_or_else(|| Err(no_property(object, property)))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Thing(&'static str);

    impl QomObject for Thing {
        fn path(&self) -> &str {
            self.0
        }

        fn type_name(&self) -> &str {
            "thing"
        }

        fn get(&self, property: &str) -> Option<Result<Value, QmpError>> {
            (property == "size").then(|| Ok(Value::from(1)))
        }

        fn set(&self, property: &str, _: &Value) -> Option<Result<(), QmpError>> {
            (property == "size").then_some(Ok(()))
        }
    }

    #[test]
    fn paths_resolve_absolute_or_by_their_end_as_qemus_do() {
        let (a, b) = (
            Thing("/machine/peripheral/a"),
            Thing("/machine/anon/device[0]"),
        );
        let c = Thing("/machine/other/device[0]");
        let objects: [&dyn QomObject; 3] = [&a, &b, &c];
        let type_of = |path| get(&objects, path, "type");
        for path in [
            "/machine/peripheral/a",
            "a",
            "peripheral/a",
            "//machine//peripheral/a/",
        ] {
            assert_eq!(type_of(path), Ok(Value::from("thing")), "{path}");
        }
        for path in ["device[0]", "/a", "", "machine", "/machine/peripheral/a/x"] {
            let error = type_of(path).unwrap_err();
            assert_eq!(error.class, ErrorClass::DeviceNotFound, "{path}");
            assert_eq!(error.desc, format!("Device '{path}' not found"));
        }
        assert_eq!(get(&objects, "anon/device[0]", "size"), Ok(Value::from(1)));
        assert_eq!(
            get(&objects, "a", "colour").unwrap_err().desc,
            "Property 'thing.colour' not found"
        );
        assert_eq!(set(&objects, "a", "size", &Value::Null), Ok(()));
        assert_eq!(
            set(&objects, "a", "type", &Value::Null).unwrap_err().desc,
            "Property 'thing.type' is not writable"
        );
    }
}
