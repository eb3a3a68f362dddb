//! The schema: every command and event is declared once, with the `qapi_*!`
//! macros, and everything else — dispatch, argument checking, introspection
//! and the generated documentation — is derived from those declarations.

mod builtins;
mod declare;
pub mod docs;
pub mod introspect;
mod types;
mod unexpected;
mod visit;

pub use declare::{Command, Event};
pub use types::{
    Builtin, CommandDecl, EnumInfo, EnumValue, EventDecl, MemberInfo, ObjectInfo, TypeInfo,
    TypeRef, UnionInfo, VariantInfo,
};
pub use visit::{struct_from_value, struct_to_value, Field, SchemaType, StructType};
