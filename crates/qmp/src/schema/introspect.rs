//! `query-qmp-schema`: the SchemaInfo list, built the way QEMU's
//! scripts/qapi/introspect.py builds it.
//!
//! Commands and events come first, in the order given.  Every type they use
//! is queued on first use and listed afterwards, breadth first.  Type names
//! other than built-ins and arrays are masked as numbers, given in order of
//! first use; every integer type shows as `int`, and every object without
//! members is the one empty object type.

use std::collections::HashMap;

use super::types::{Builtin, CommandDecl, EventDecl, TypeInfo};
use super::SchemaType;
use crate::commands::introspection::{
    JSONType, SchemaInfo, SchemaInfoArray, SchemaInfoBase, SchemaInfoBuiltin, SchemaInfoCommand,
    SchemaInfoEnum, SchemaInfoEnumMember, SchemaInfoEvent, SchemaInfoObject,
    SchemaInfoObjectMember, SchemaInfoObjectVariant, SchemaInfoVariant,
};
use crate::json::Value;

/// Introspection entries for these commands and events and the types they use.
pub fn schema(commands: &[CommandDecl], events: &[EventDecl]) -> Vec<SchemaInfo> {
    let mut builder = Builder::default();
    let mut entries = Vec::new();
    for command in commands {
        let arg_type = builder.use_type((command.args)());
        let ret_type = builder.use_type((command.returns)());
        entries.push(entry(
            command.name,
            SchemaInfoVariant::Command(SchemaInfoCommand {
                arg_type,
                ret_type,
                allow_oob: command.allow_oob.then_some(true),
            }),
        ));
    }
    for event in events {
        let arg_type = builder.use_type((event.data)());
        entries.push(entry(
            event.name,
            SchemaInfoVariant::Event(SchemaInfoEvent { arg_type }),
        ));
    }
    let mut next = 0;
    while next < builder.used.len() {
        let ty = builder.used[next];
        next += 1;
        let name = builder.wire_name(&ty);
        let variant = builder.describe(ty);
        entries.push(entry(&name, variant));
    }
    entries
}

fn entry(name: &str, variant: SchemaInfoVariant) -> SchemaInfo {
    SchemaInfo {
        base: SchemaInfoBase {
            name: name.to_string(),
            features: None,
        },
        meta_type: variant,
    }
}

#[derive(Default)]
struct Builder {
    /// Types in order of first use.
    used: Vec<TypeInfo>,
    /// Schema name of each used type → its wire name.
    wire_names: HashMap<String, String>,
    /// Masked numbers given so far.
    masked: usize,
}

impl Builder {
    /// Queues `ty` if new and returns the name it goes by on the wire.
    /// As in introspect.py, a new array is queued before its element.
    fn use_type(&mut self, ty: TypeInfo) -> String {
        let ty = canonical(ty);
        let key = identity(ty);
        if let Some(name) = self.wire_names.get(&key) {
            return name.clone();
        }
        self.used.push(ty);
        let name = match ty {
            TypeInfo::Builtin(builtin) => builtin.name().to_string(),
            TypeInfo::Array(element) => format!("[{}]", self.use_type(element())),
            TypeInfo::Enum(_) | TypeInfo::Object(_) => {
                self.masked += 1;
                (self.masked - 1).to_string()
            }
        };
        self.wire_names.insert(key, name.clone());
        name
    }

    fn wire_name(&self, ty: &TypeInfo) -> String {
        self.wire_names
            .get(&identity(*ty))
            .cloned()
            .unwrap_or_default()
    }

    fn describe(&mut self, ty: TypeInfo) -> SchemaInfoVariant {
        match ty {
            TypeInfo::Builtin(builtin) => SchemaInfoVariant::Builtin(SchemaInfoBuiltin {
                json_type: builtin.json_type(),
            }),
            TypeInfo::Enum(info) => SchemaInfoVariant::Enum(SchemaInfoEnum {
                members: info
                    .values
                    .iter()
                    .map(|value| SchemaInfoEnumMember {
                        name: value.name.to_string(),
                        features: None,
                    })
                    .collect(),
                values: info.values.iter().map(|v| v.name.to_string()).collect(),
            }),
            TypeInfo::Array(element) => SchemaInfoVariant::Array(SchemaInfoArray {
                element_type: self.use_type(element()),
            }),
            TypeInfo::Object(info) => {
                let tag = info.union.as_ref().map(|union| &union.tag);
                let members = info
                    .all_members()
                    .into_iter()
                    .map(|member| SchemaInfoObjectMember {
                        name: member.name.to_string(),
                        ty: self.use_type((member.ty)()),
                        default: member.optional.then_some(Value::Null),
                        features: None,
                    })
                    .collect();
                let variants = info.union.as_ref().map(|union| {
                    union
                        .variants
                        .iter()
                        .map(|variant| SchemaInfoObjectVariant {
                            case: variant.case.to_string(),
                            ty: self.use_type((variant.ty)()),
                        })
                        .collect()
                });
                SchemaInfoVariant::Object(SchemaInfoObject {
                    members,
                    tag: tag.map(|tag| tag.name.to_string()),
                    variants,
                })
            }
        }
    }
}

/// Introspection's view of a type: integers are `int`, empty objects are one type.
fn canonical(ty: TypeInfo) -> TypeInfo {
    match ty {
        TypeInfo::Builtin(builtin) if builtin.json_type() == JSONType::Int => {
            TypeInfo::Builtin(Builtin::Int)
        }
        ty if ty.is_empty_object() => <() as SchemaType>::type_info(),
        ty => ty,
    }
}

/// What makes two types the same type to introspection: arrays are the
/// same when their elements are.
fn identity(ty: TypeInfo) -> String {
    match canonical(ty) {
        TypeInfo::Array(element) => format!("[{}]", identity(element())),
        ty => ty.name(),
    }
}
