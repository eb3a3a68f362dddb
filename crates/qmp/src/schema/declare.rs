//! The `qapi_*!` macros: each declares a schema entity once and generates the
//! Rust type, its checking/conversion and its introspection description.
//!
//! ```
//! qmp::qapi_struct! {
//!     /// Information about a thing.
//!     pub struct ThingInfo {
//!         /// its name
//!         name: String,
//!         /// how many (absent when unknown)
//!         item_count = "item-count": Option<i64>,
//!     }
//! }
//! ```
//! A member is optional exactly when its type is `Option<T>`; `= "wire-name"`
//! gives the member's QMP name when it differs from the Rust field name.

use super::types::{CommandDecl, EventDecl};
use super::visit::SchemaType;

/// A QMP command: its arguments are `Self`, its return value `Returns`.
pub trait Command: SchemaType {
    const NAME: &'static str;
    const ALLOW_OOB: bool;
    type Returns: SchemaType;

    fn decl() -> CommandDecl;
}

/// An event's data: `Self` is the payload of event `NAME`.
pub trait Event: SchemaType {
    const NAME: &'static str;

    fn decl() -> EventDecl;
}

#[doc(hidden)]
#[macro_export]
macro_rules! __wire_name {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $wire:literal) => {
        $wire
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __allow_oob {
    () => {
        false
    };
    (allow_oob) => {
        true
    };
}

/// Declares a struct type (a JSON object with named members).
#[macro_export]
macro_rules! qapi_struct {
    (
        $(#[doc = $doc:literal])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $member_doc:literal])*
                $field:ident $(= $wire:literal)? : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq)]
        $vis struct $name {
            $( $(#[doc = $member_doc])* pub $field: $ty, )*
        }

        impl $crate::schema::StructType for $name {
            const MEMBERS: &'static [$crate::schema::MemberInfo] = &[$(
                $crate::schema::MemberInfo {
                    name: $crate::__wire_name!($field $(, $wire)?),
                    doc: concat!($($member_doc, "\n"),*),
                    optional: <$ty as $crate::schema::SchemaType>::OPTIONAL,
                    ty: <$ty as $crate::schema::SchemaType>::type_info,
                },
            )*];

            #[allow(unused_variables)] // by structs without members
            fn from_members(
                object: &$crate::json::Map<String, $crate::json::Value>,
                at: &$crate::schema::Field<'_>,
            ) -> Result<Self, $crate::QmpError> {
                $( let $field = at.get::<$ty>(object, $crate::__wire_name!($field $(, $wire)?))?; )*
                Ok(Self { $($field),* })
            }

            #[allow(unused_variables)] // by structs without members
            fn write_members(&self, object: &mut $crate::json::Map<String, $crate::json::Value>) {
                $(
                    if !$crate::schema::SchemaType::is_absent(&self.$field) {
                        object.insert(
                            $crate::__wire_name!($field $(, $wire)?).to_string(),
                            $crate::schema::SchemaType::to_value(&self.$field),
                        );
                    }
                )*
            }
        }

        impl $crate::schema::SchemaType for $name {
            fn type_info() -> $crate::schema::TypeInfo {
                static INFO: $crate::schema::ObjectInfo = $crate::schema::ObjectInfo {
                    name: stringify!($name),
                    doc: concat!($($doc, "\n"),*),
                    members: <$name as $crate::schema::StructType>::MEMBERS,
                    union: None,
                };
                $crate::schema::TypeInfo::Object(&INFO)
            }

            fn to_value(&self) -> $crate::json::Value {
                $crate::schema::struct_to_value(self)
            }

            fn from_value(
                value: &$crate::json::Value,
                at: &$crate::schema::Field<'_>,
            ) -> Result<Self, $crate::QmpError> {
                $crate::schema::struct_from_value(value, at)
            }
        }
    };
}

/// Declares a flat union: the members of struct `Base`, a tag member, and the
/// members of the struct the tag's value selects.  The Rust value holds the
/// base as `base` and the selected variant under the tag's field name.
/// `at N` places the tag after the first N base members (default: first);
/// the tag is always checked first.
#[macro_export]
macro_rules! qapi_union {
    (
        $(#[doc = $doc:literal])*
        $vis:vis union $name:ident : $base:ty,
        tag $tag_field:ident = $tag_wire:literal : $tag:ident $(at $position:literal)? => $variants:ident {
            $( $case:ident($case_ty:ty) ),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq)]
        $vis struct $name {
            pub base: $base,
            pub $tag_field: $variants,
        }

        #[doc = concat!("The variant part of [`", stringify!($name), "`], selected by its tag.")]
        #[derive(Debug, Clone, PartialEq)]
        $vis enum $variants {
            $( $case($case_ty), )*
        }

        impl $variants {
            /// The tag value that selects this variant.
            pub fn tag(&self) -> $tag {
                match self {
                    $( $variants::$case(_) => $tag::$case, )*
                }
            }
        }

        impl $crate::schema::SchemaType for $name {
            fn type_info() -> $crate::schema::TypeInfo {
                static INFO: $crate::schema::ObjectInfo = $crate::schema::ObjectInfo {
                    name: stringify!($name),
                    doc: concat!($($doc, "\n"),*),
                    members: <$base as $crate::schema::StructType>::MEMBERS,
                    union: Some($crate::schema::UnionInfo {
                        tag: $crate::schema::MemberInfo {
                            name: $tag_wire,
                            doc: "selects which further members the object has",
                            optional: false,
                            ty: <$tag as $crate::schema::SchemaType>::type_info,
                        },
                        position: 0 $(+ $position)?,
                        variants: &[$(
                            $crate::schema::VariantInfo {
                                case: $tag::$case.as_str(),
                                ty: <$case_ty as $crate::schema::SchemaType>::type_info,
                            },
                        )*],
                    }),
                };
                $crate::schema::TypeInfo::Object(&INFO)
            }

            fn to_value(&self) -> $crate::json::Value {
                let mut object = $crate::json::Map::new();
                object.insert(
                    $tag_wire.to_string(),
                    $crate::schema::SchemaType::to_value(&self.$tag_field.tag()),
                );
                $crate::schema::StructType::write_members(&self.base, &mut object);
                match &self.$tag_field {
                    $( $variants::$case(variant) => {
                        $crate::schema::StructType::write_members(variant, &mut object)
                    } )*
                }
                $crate::json::Value::Object(object)
            }

            fn from_value(
                value: &$crate::json::Value,
                at: &$crate::schema::Field<'_>,
            ) -> Result<Self, $crate::QmpError> {
                use $crate::schema::StructType;
                let object = at.object(value)?;
                let tag = at.get::<$tag>(object, $tag_wire)?;
                let base = <$base>::from_members(object, at)?;
                let (variant, variant_members) = match tag {
                    $( $tag::$case => (
                        $variants::$case(<$case_ty>::from_members(object, at)?),
                        <$case_ty>::MEMBERS,
                    ), )*
                };
                at.reject_unknown_members(object, &[$tag_wire], &[<$base>::MEMBERS, variant_members])?;
                Ok(Self { base, $tag_field: variant })
            }
        }
    };
}

/// Declares an enumeration (a string from a fixed set).
#[macro_export]
macro_rules! qapi_enum {
    (
        $(#[doc = $doc:literal])*
        $vis:vis enum $name:ident {
            $(
                $(#[doc = $value_doc:literal])*
                $variant:ident = $wire:literal
            ),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[doc = $value_doc])* $variant, )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The value as it appears on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $wire, )*
                }
            }

            /// Parses a wire value.
            pub fn from_wire(text: &str) -> Option<Self> {
                match text {
                    $( $wire => Some($name::$variant), )*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::schema::SchemaType for $name {
            fn type_info() -> $crate::schema::TypeInfo {
                static INFO: $crate::schema::EnumInfo = $crate::schema::EnumInfo {
                    name: stringify!($name),
                    doc: concat!($($doc, "\n"),*),
                    values: &[$(
                        $crate::schema::EnumValue {
                            name: $wire,
                            doc: concat!($($value_doc, "\n"),*),
                        },
                    )*],
                };
                $crate::schema::TypeInfo::Enum(&INFO)
            }

            fn to_value(&self) -> $crate::json::Value {
                $crate::json::Value::String(self.as_str().to_string())
            }

            fn from_value(
                value: &$crate::json::Value,
                at: &$crate::schema::Field<'_>,
            ) -> Result<Self, $crate::QmpError> {
                let text = value.as_str().ok_or_else(|| at.invalid_type("string"))?;
                Self::from_wire(text).ok_or_else(|| {
                    $crate::QmpError::generic(format!(
                        "Parameter '{}' does not accept value '{}'",
                        at.name(),
                        text
                    ))
                })
            }
        }
    };
}

/// Declares a command: its name, its argument struct and its return type.
/// `"name" (allow_oob) => ...` marks a command that may run out of band.
#[macro_export]
macro_rules! qapi_command {
    (
        $(#[doc = $doc:literal])*
        $wire:literal $(($flag:ident))? => $vis:vis struct $name:ident {
            $($members:tt)*
        } -> $returns:ty
    ) => {
        $crate::qapi_struct! {
            $(#[doc = $doc])*
            $vis struct $name { $($members)* }
        }

        impl $crate::schema::Command for $name {
            const NAME: &'static str = $wire;
            const ALLOW_OOB: bool = $crate::__allow_oob!($($flag)?);
            type Returns = $returns;

            fn decl() -> $crate::schema::CommandDecl {
                $crate::schema::CommandDecl {
                    name: $wire,
                    doc: concat!($($doc, "\n"),*),
                    args: <$name as $crate::schema::SchemaType>::type_info,
                    returns: <$returns as $crate::schema::SchemaType>::type_info,
                    allow_oob: <$name as $crate::schema::Command>::ALLOW_OOB,
                }
            }
        }
    };
}

/// Declares an event: its name and its data struct.
#[macro_export]
macro_rules! qapi_event {
    (
        $(#[doc = $doc:literal])*
        $wire:literal => $vis:vis struct $name:ident {
            $($members:tt)*
        }
    ) => {
        $crate::qapi_struct! {
            $(#[doc = $doc])*
            $vis struct $name { $($members)* }
        }

        impl $crate::schema::Event for $name {
            const NAME: &'static str = $wire;

            fn decl() -> $crate::schema::EventDecl {
                $crate::schema::EventDecl {
                    name: $wire,
                    doc: concat!($($doc, "\n"),*),
                    data: <$name as $crate::schema::SchemaType>::type_info,
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::schema::{Command, Field, SchemaType};

    crate::qapi_enum! {
        /// Colours.
        pub enum Colour {
            /// red
            Red = "red",
            DarkBlue = "dark-blue",
        }
    }

    crate::qapi_struct! {
        /// Inner.
        pub struct Inner {
            colours: Vec<Colour>,
        }
    }

    crate::qapi_command! {
        /// Paints.
        "paint" (allow_oob) => pub struct Paint {
            /// what to paint
            name: String,
            layer_count = "layer-count": Option<u32>,
            inner: Option<Inner>,
        } -> ()
    }

    fn check(value: serde_json::Value) -> Result<Paint, String> {
        Paint::from_value(&value, &Field::root()).map_err(|e| e.desc)
    }

    #[test]
    fn converts_valid_arguments() {
        let paint = check(json!({"name": "x", "inner": {"colours": ["dark-blue"]}})).unwrap();
        assert_eq!(paint.name, "x");
        assert_eq!(paint.layer_count, None);
        assert_eq!(paint.inner.unwrap().colours, vec![Colour::DarkBlue]);
        assert_eq!(Colour::ALL, [Colour::Red, Colour::DarkBlue]);
        assert!(Paint::decl().allow_oob);
        assert_eq!(Paint::NAME, "paint");
    }

    #[test]
    fn reports_errors_like_qemu() {
        assert_eq!(check(json!({})).unwrap_err(), "Parameter 'name' is missing");
        assert_eq!(
            check(json!({"name": 1})).unwrap_err(),
            "Invalid parameter type for 'name', expected: string"
        );
        assert_eq!(
            check(json!({"name": "x", "bogus": 1})).unwrap_err(),
            "Parameter 'bogus' is unexpected"
        );
        assert_eq!(
            check(json!({"name": "x", "layer-count": -1})).unwrap_err(),
            "Parameter 'layer-count' expects uint32_t"
        );
        assert_eq!(
            check(json!({"name": "x", "inner": {"colours": "red"}})).unwrap_err(),
            "Invalid parameter type for 'inner.colours', expected: array"
        );
        assert_eq!(
            check(json!({"name": "x", "inner": {"colours": ["green"]}})).unwrap_err(),
            "Parameter 'null' does not accept value 'green'"
        );
        assert_eq!(
            check(json!({"name": "x", "inner": {"extra": 1, "colours": []}})).unwrap_err(),
            "Parameter 'inner.extra' is unexpected"
        );
        assert_eq!(
            check(json!([])).unwrap_err(),
            "Invalid parameter type for '<anonymous>', expected: object"
        );
    }

    #[test]
    fn leaves_absent_optionals_out_of_output() {
        let paint = check(json!({"name": "x", "layer-count": 3})).unwrap();
        assert_eq!(paint.to_value(), json!({"name": "x", "layer-count": 3}));
    }
}
