//! Typed conversion between JSON values and schema types, with the exact
//! errors QEMU's QObject input visitor reports.
//!
//! Converting the whole argument object happens before a handler runs, so a
//! bad argument is always reported before any side effect.

use serde_json::{Map, Value};

use super::types::{MemberInfo, TypeInfo};
use super::unexpected::first_unexpected;
use crate::error::QmpError;

/// A Rust type that is a schema type: it can be described, checked and converted.
pub trait SchemaType: Sized {
    /// True only for `Option<T>`: the member may be absent.
    const OPTIONAL: bool = false;

    fn type_info() -> TypeInfo;

    fn to_value(&self) -> Value;

    /// Checks `value` against the type and converts it; `at` names the value in errors.
    fn from_value(value: &Value, at: &Field<'_>) -> Result<Self, QmpError>;

    /// The value of an absent optional member; `None` when the member is required.
    fn absent() -> Option<Self> {
        None
    }

    /// True when the member should be left out of output (an absent optional).
    fn is_absent(&self) -> bool {
        false
    }
}

/// A schema type that is a JSON object with declared members; flat unions
/// are built from these.
pub trait StructType: SchemaType {
    const MEMBERS: &'static [MemberInfo];

    /// Reads the declared members of `object`, ignoring any others.
    fn from_members(object: &Map<String, Value>, at: &Field<'_>) -> Result<Self, QmpError>;

    /// Adds the members that are present to `object`.
    fn write_members(&self, object: &mut Map<String, Value>);
}

/// [`SchemaType::from_value`] of a struct: its members, and nothing else.
pub fn struct_from_value<T: StructType>(value: &Value, at: &Field<'_>) -> Result<T, QmpError> {
    let object = at.object(value)?;
    let result = T::from_members(object, at)?;
    at.reject_unknown_members(object, &[], &[T::MEMBERS])?;
    Ok(result)
}

/// [`SchemaType::to_value`] of a struct.
pub fn struct_to_value<T: StructType>(value: &T) -> Value {
    let mut object = Map::new();
    value.write_members(&mut object);
    Value::Object(object)
}

/// Where a value sits inside the arguments, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    parent: Option<&'a Field<'a>>,
    segment: Segment<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Segment<'a> {
    Root,
    Member(&'a str),
    Element(usize),
}

impl<'a> Field<'a> {
    /// The arguments object itself.
    pub fn root() -> Field<'static> {
        Field {
            parent: None,
            segment: Segment::Root,
        }
    }

    pub fn member(&'a self, name: &'a str) -> Field<'a> {
        Field {
            parent: Some(self),
            segment: Segment::Member(name),
        }
    }

    pub fn element(&'a self, index: usize) -> Field<'a> {
        Field {
            parent: Some(self),
            segment: Segment::Element(index),
        }
    }

    /// The bare name QEMU uses for enum and range errors: the member name,
    /// or `null` for list elements and the root.
    pub fn name(&self) -> &str {
        match self.segment {
            Segment::Member(name) => name,
            _ => "null",
        }
    }

    /// The path QEMU uses for type errors: `a.b`, `a[0]`, `a[0].b`.
    pub fn full_name(&self) -> String {
        let mut path = match self.parent {
            Some(parent) => parent.full_name(),
            None => String::new(),
        };
        match self.segment {
            Segment::Root => {}
            Segment::Member(name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
            }
            Segment::Element(index) => path.push_str(&format!("[{index}]")),
        }
        path
    }

    /// `Invalid parameter type for 'x', expected: <json type>`.
    pub fn invalid_type(&self, expected: &str) -> QmpError {
        let name = self.full_name();
        let name = if name.is_empty() {
            "<anonymous>"
        } else {
            &name
        };
        QmpError::generic(format!(
            "Invalid parameter type for '{name}', expected: {expected}"
        ))
    }

    /// `Parameter 'x' expects <what>`, naming the value the way `name_style` says.
    pub fn expects(&self, what: &str, full: bool) -> QmpError {
        let name = if full {
            self.full_name()
        } else {
            self.name().to_string()
        };
        QmpError::generic(format!("Parameter '{name}' expects {what}"))
    }

    /// The value is an object: returns its members.
    pub fn object<'v>(&self, value: &'v Value) -> Result<&'v Map<String, Value>, QmpError> {
        value.as_object().ok_or_else(|| self.invalid_type("object"))
    }

    /// Reads member `name` of `object`, which this field denotes.
    pub fn get<T: SchemaType>(
        &self,
        object: &Map<String, Value>,
        name: &str,
    ) -> Result<T, QmpError> {
        let at = self.member(name);
        match object.get(name) {
            Some(value) => T::from_value(value, &at),
            None => T::absent().ok_or_else(|| {
                QmpError::generic(format!("Parameter '{}' is missing", at.full_name()))
            }),
        }
    }

    /// Rejects any member of `object` that is neither in `names` nor declared
    /// in `members`, as QEMU does after visiting a struct.  With several
    /// unknown members, the one named is the one QEMU names.
    pub fn reject_unknown_members(
        &self,
        object: &Map<String, Value>,
        names: &[&str],
        members: &[&[MemberInfo]],
    ) -> Result<(), QmpError> {
        let known: Vec<&str> = names
            .iter()
            .copied()
            .chain(
                members
                    .iter()
                    .flat_map(|list| list.iter().map(|member| member.name)),
            )
            .collect();
        let mut unknown = object.keys().filter(|key| !known.contains(&key.as_str()));
        let Some(first) = unknown.next() else {
            return Ok(());
        };
        let reported = if unknown.next().is_none() {
            first.as_str()
        } else {
            let keys: Vec<&str> = object.keys().map(String::as_str).collect();
            let consumed: Vec<&str> = known
                .iter()
                .copied()
                .filter(|name| object.contains_key(*name))
                .collect();
            first_unexpected(&keys, &consumed).unwrap_or(first)
        };
        Err(QmpError::generic(format!(
            "Parameter '{}' is unexpected",
            self.member(reported).full_name()
        )))
    }
}
