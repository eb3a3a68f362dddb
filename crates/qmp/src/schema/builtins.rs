//! Schema impls for the built-in types and the generic wrappers.

use serde_json::{Map, Value};

use super::types::{Builtin, ObjectInfo, TypeInfo};
use super::visit::{Field, SchemaType};
use crate::error::QmpError;

impl SchemaType for String {
    fn type_info() -> TypeInfo {
        TypeInfo::Builtin(Builtin::Str)
    }
    fn to_value(&self) -> Value {
        Value::String(self.clone())
    }
    fn from_value(value: &Value, at: &Field<'_>) -> Result<Self, QmpError> {
        value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| at.invalid_type("string"))
    }
}

impl SchemaType for bool {
    fn type_info() -> TypeInfo {
        TypeInfo::Builtin(Builtin::Bool)
    }
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_value(value: &Value, at: &Field<'_>) -> Result<Self, QmpError> {
        value.as_bool().ok_or_else(|| at.invalid_type("boolean"))
    }
}

impl SchemaType for i64 {
    fn type_info() -> TypeInfo {
        TypeInfo::Builtin(Builtin::Int)
    }
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
    fn from_value(value: &Value, at: &Field<'_>) -> Result<Self, QmpError> {
        value.as_i64().ok_or_else(|| at.invalid_type("integer"))
    }
}

impl SchemaType for u64 {
    fn type_info() -> TypeInfo {
        TypeInfo::Builtin(Builtin::Uint64)
    }
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
    fn from_value(value: &Value, at: &Field<'_>) -> Result<Self, QmpError> {
        // QEMU accepts negative integers for uint64 and wraps them.
        value
            .as_u64()
            .or_else(|| value.as_i64().map(|v| v as u64))
            .ok_or_else(|| at.expects("uint64", true))
    }
}

/// Sized integers: visited as int64 / uint64, then range-checked with the
/// type's name in the error, as QEMU's `visit_type_intN` does.
macro_rules! sized_int {
    ($($ty:ty => $builtin:ident, $wide:ty, $name:literal;)*) => {$(
        impl SchemaType for $ty {
            fn type_info() -> TypeInfo {
                TypeInfo::Builtin(Builtin::$builtin)
            }
            fn to_value(&self) -> Value {
                Value::from(*self)
            }
            fn from_value(value: &Value, at: &Field<'_>) -> Result<Self, QmpError> {
                let wide = <$wide>::from_value(value, at)?;
                <$ty>::try_from(wide).map_err(|_| at.expects($name, false))
            }
        }
    )*};
}

sized_int! {
    i8 => Int8, i64, "int8_t";
    i16 => Int16, i64, "int16_t";
    i32 => Int32, i64, "int32_t";
    u8 => Uint8, u64, "uint8_t";
    u16 => Uint16, u64, "uint16_t";
    u32 => Uint32, u64, "uint32_t";
}

impl SchemaType for f64 {
    fn type_info() -> TypeInfo {
        TypeInfo::Builtin(Builtin::Number)
    }
    fn to_value(&self) -> Value {
        serde_json::Number::from_f64(*self).map_or(Value::Null, Value::Number)
    }
    fn from_value(value: &Value, at: &Field<'_>) -> Result<Self, QmpError> {
        value.as_f64().ok_or_else(|| at.invalid_type("number"))
    }
}

/// `any`: every JSON value is accepted as is.
impl SchemaType for Value {
    fn type_info() -> TypeInfo {
        TypeInfo::Builtin(Builtin::Any)
    }
    fn to_value(&self) -> Value {
        self.clone()
    }
    fn from_value(value: &Value, _at: &Field<'_>) -> Result<Self, QmpError> {
        Ok(value.clone())
    }
}

/// The empty object: arguments of commands that take none, and the return
/// of commands that return nothing (`{}`); QEMU's `q_empty`.
impl SchemaType for () {
    fn type_info() -> TypeInfo {
        static EMPTY: ObjectInfo = ObjectInfo {
            name: "q_empty",
            doc: "",
            members: &[],
            union: None,
        };
        TypeInfo::Object(&EMPTY)
    }
    fn to_value(&self) -> Value {
        Value::Object(Map::new())
    }
    fn from_value(value: &Value, at: &Field<'_>) -> Result<Self, QmpError> {
        at.reject_unknown_members(at.object(value)?, &[], &[])
    }
}

impl<T: SchemaType> SchemaType for Option<T> {
    const OPTIONAL: bool = true;

    fn type_info() -> TypeInfo {
        T::type_info()
    }
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::to_value)
    }
    fn from_value(value: &Value, at: &Field<'_>) -> Result<Self, QmpError> {
        T::from_value(value, at).map(Some)
    }
    fn absent() -> Option<Self> {
        Some(None)
    }
    fn is_absent(&self) -> bool {
        self.is_none()
    }
}

/// For types that contain themselves (an image's backing image).
impl<T: SchemaType> SchemaType for Box<T> {
    fn type_info() -> TypeInfo {
        T::type_info()
    }
    fn to_value(&self) -> Value {
        T::to_value(self)
    }
    fn from_value(value: &Value, at: &Field<'_>) -> Result<Self, QmpError> {
        T::from_value(value, at).map(Box::new)
    }
}

impl<T: SchemaType> SchemaType for Vec<T> {
    fn type_info() -> TypeInfo {
        TypeInfo::Array(T::type_info)
    }
    fn to_value(&self) -> Value {
        Value::Array(self.iter().map(T::to_value).collect())
    }
    fn from_value(value: &Value, at: &Field<'_>) -> Result<Self, QmpError> {
        let items = value.as_array().ok_or_else(|| at.invalid_type("array"))?;
        items
            .iter()
            .enumerate()
            .map(|(index, item)| T::from_value(item, &at.element(index)))
            .collect()
    }
}

/// A union case that adds no members.
impl super::visit::StructType for () {
    const MEMBERS: &'static [super::types::MemberInfo] = &[];

    fn from_members(_object: &Map<String, Value>, _at: &Field<'_>) -> Result<Self, QmpError> {
        Ok(())
    }

    fn write_members(&self, _object: &mut Map<String, Value>) {}
}
