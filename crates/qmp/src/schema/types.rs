//! Descriptions of schema types, as declared once with the `qapi_*!` macros.
//!
//! These static descriptions drive introspection (`query-qmp-schema`), the
//! generated documentation and nothing else: argument checking is done by the
//! typed [`SchemaType::from_value`](super::SchemaType::from_value) impls the
//! same macros generate, so a description can never disagree with the code.

use std::fmt;

use crate::commands::introspection::JSONType;

/// A reference to a type, resolved lazily so that types may refer to each other.
pub type TypeRef = fn() -> TypeInfo;

/// One type of the schema.
#[derive(Clone, Copy)]
pub enum TypeInfo {
    Builtin(Builtin),
    Enum(&'static EnumInfo),
    Object(&'static ObjectInfo),
    Array(TypeRef),
}

impl TypeInfo {
    /// The type's name as the schema source spells it (`[T]` for arrays).
    pub fn name(&self) -> String {
        match self {
            TypeInfo::Builtin(b) => b.name().to_string(),
            TypeInfo::Enum(e) => e.name.to_string(),
            TypeInfo::Object(o) => o.name.to_string(),
            TypeInfo::Array(element) => format!("[{}]", element().name()),
        }
    }

    /// True for an object type without members: QEMU's `q_empty`.
    pub fn is_empty_object(&self) -> bool {
        matches!(self, TypeInfo::Object(o) if o.members.is_empty() && o.union.is_none())
    }
}

impl fmt::Debug for TypeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// QAPI's built-in types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Str,
    Int,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Size,
    Number,
    Bool,
    Null,
    Any,
}

impl Builtin {
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Str => "str",
            Builtin::Int => "int",
            Builtin::Int8 => "int8",
            Builtin::Int16 => "int16",
            Builtin::Int32 => "int32",
            Builtin::Int64 => "int64",
            Builtin::Uint8 => "uint8",
            Builtin::Uint16 => "uint16",
            Builtin::Uint32 => "uint32",
            Builtin::Uint64 => "uint64",
            Builtin::Size => "size",
            Builtin::Number => "number",
            Builtin::Bool => "bool",
            Builtin::Null => "null",
            Builtin::Any => "any",
        }
    }

    /// The JSON type a value of this type has on the wire.
    pub fn json_type(self) -> JSONType {
        match self {
            Builtin::Str => JSONType::String,
            Builtin::Number => JSONType::Number,
            Builtin::Bool => JSONType::Boolean,
            Builtin::Null => JSONType::Null,
            Builtin::Any => JSONType::Value,
            _ => JSONType::Int,
        }
    }
}

/// An enumeration: a string from a fixed set.
#[derive(Debug)]
pub struct EnumInfo {
    pub name: &'static str,
    pub doc: &'static str,
    pub values: &'static [EnumValue],
}

#[derive(Debug)]
pub struct EnumValue {
    pub name: &'static str,
    pub doc: &'static str,
}

/// A struct or flat union: a JSON object with named members and, for a
/// union, a tag member whose value selects the variant's further members.
#[derive(Debug)]
pub struct ObjectInfo {
    pub name: &'static str,
    pub doc: &'static str,
    pub members: &'static [MemberInfo],
    pub union: Option<UnionInfo>,
}

/// What makes an object a flat union: the tag member, which sits among the
/// base members at `position`, and the variant each tag value selects.
#[derive(Debug)]
pub struct UnionInfo {
    pub tag: MemberInfo,
    pub position: usize,
    pub variants: &'static [VariantInfo],
}

impl ObjectInfo {
    /// The members every value has: the base members, with a union's tag in its place.
    pub fn all_members(&self) -> Vec<&MemberInfo> {
        let mut members: Vec<&MemberInfo> = self.members.iter().collect();
        if let Some(union) = &self.union {
            members.insert(union.position.min(members.len()), &union.tag);
        }
        members
    }
}

/// One case of a flat union: the tag value and the struct it adds.
#[derive(Debug)]
pub struct VariantInfo {
    pub case: &'static str,
    pub ty: TypeRef,
}

#[derive(Debug)]
pub struct MemberInfo {
    pub name: &'static str,
    pub doc: &'static str,
    pub optional: bool,
    pub ty: TypeRef,
}

/// A command as introspection and the docs see it.
#[derive(Debug, Clone, Copy)]
pub struct CommandDecl {
    pub name: &'static str,
    pub doc: &'static str,
    pub args: TypeRef,
    pub returns: TypeRef,
    pub allow_oob: bool,
}

/// An event as introspection and the docs see it.
#[derive(Debug, Clone, Copy)]
pub struct EventDecl {
    pub name: &'static str,
    pub doc: &'static str,
    pub data: TypeRef,
}
