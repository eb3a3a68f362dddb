//! The types of `query-qmp-schema`'s answer, QEMU's SchemaInfo.

use crate::json::Value;

crate::qapi_enum! {
    /// This is a SchemaInfo's meta type, i.e. the kind of entity it describes.
    pub enum SchemaMetaType {
        /// a predefined type such as 'int' or 'bool'.
        Builtin = "builtin",
        /// an enumeration type
        Enum = "enum",
        /// an array type
        Array = "array",
        /// an object type (struct or union)
        Object = "object",
        /// an alternate type
        Alternate = "alternate",
        /// a QMP command
        Command = "command",
        /// a QMP event
        Event = "event",
    }
}

crate::qapi_enum! {
    /// The four primitive and two structured types according to RFC 8259 section 1, plus 'int' (split off 'number'), plus the obvious top type 'value'.
    pub enum JSONType {
        String = "string",
        Number = "number",
        Int = "int",
        Boolean = "boolean",
        Null = "null",
        Object = "object",
        Array = "array",
        Value = "value",
    }
}

crate::qapi_struct! {
    /// The members every SchemaInfo has.
    pub struct SchemaInfoBase {
        /// the entity's name, inherited from base.  The SchemaInfo is always
        /// referenced by this name.  Commands and events have the name
        /// defined in the QAPI schema.  Unlike command and event names, type
        /// names are not part of the wire ABI.
        name: String,
        /// names of features associated with the entity, in no particular order.
        features: Option<Vec<String>>,
    }
}

crate::qapi_struct! {
    /// Additional SchemaInfo members for meta-type 'builtin'.
    pub struct SchemaInfoBuiltin {
        /// the JSON type used for this type on the wire.
        json_type = "json-type": JSONType,
    }
}

crate::qapi_struct! {
    /// An enumeration member.
    pub struct SchemaInfoEnumMember {
        /// the member's name, as defined in the QAPI schema.
        name: String,
        /// names of features associated with the member, in no particular order.
        features: Option<Vec<String>>,
    }
}

crate::qapi_struct! {
    /// Additional SchemaInfo members for meta-type 'enum'.
    pub struct SchemaInfoEnum {
        /// the enum type's members, in no particular order.
        members: Vec<SchemaInfoEnumMember>,
        /// the enumeration type's member names, in no particular order.
        /// Redundant with @members.  Just for backward compatibility.
        values: Vec<String>,
    }
}

crate::qapi_struct! {
    /// Additional SchemaInfo members for meta-type 'array'.
    pub struct SchemaInfoArray {
        /// the array type's element type.
        element_type = "element-type": String,
    }
}

crate::qapi_struct! {
    /// An object member.
    pub struct SchemaInfoObjectMember {
        /// the member's name, as defined in the QAPI schema.
        name: String,
        /// the name of the member's type.
        ty = "type": String,
        /// default when used as command parameter.  If absent, the parameter
        /// is mandatory.  If present, the value must be null.  The parameter
        /// is optional, and behavior when it's missing is not specified here.
        default: Option<Value>,
        /// names of features associated with the member, in no particular order.
        features: Option<Vec<String>>,
    }
}

crate::qapi_struct! {
    /// The variant members for a value of the type tag.
    pub struct SchemaInfoObjectVariant {
        /// a value of the type tag.
        case: String,
        /// the name of the object type that provides the variant members
        /// when the type tag has value @case.
        ty = "type": String,
    }
}

crate::qapi_struct! {
    /// Additional SchemaInfo members for meta-type 'object'.
    pub struct SchemaInfoObject {
        /// the object type's (non-variant) members, in no particular order.
        members: Vec<SchemaInfoObjectMember>,
        /// the name of the member serving as type tag.  An element of
        /// @members with this name must exist.
        tag: Option<String>,
        /// variant members, i.e. additional members that depend on the type
        /// tag's value.  Present exactly when @tag is present.
        variants: Option<Vec<SchemaInfoObjectVariant>>,
    }
}

crate::qapi_struct! {
    /// An alternate member.
    pub struct SchemaInfoAlternateMember {
        /// the name of the member's type.
        ty = "type": String,
    }
}

crate::qapi_struct! {
    /// Additional SchemaInfo members for meta-type 'alternate'.
    pub struct SchemaInfoAlternate {
        /// the alternate type's members, in no particular order.
        members: Vec<SchemaInfoAlternateMember>,
    }
}

crate::qapi_struct! {
    /// Additional SchemaInfo members for meta-type 'command'.
    pub struct SchemaInfoCommand {
        /// the name of the object type that provides the command's parameters.
        arg_type = "arg-type": String,
        /// the name of the command's result type.
        ret_type = "ret-type": String,
        /// whether the command allows out-of-band execution, defaults to false
        allow_oob = "allow-oob": Option<bool>,
    }
}

crate::qapi_struct! {
    /// Additional SchemaInfo members for meta-type 'event'.
    pub struct SchemaInfoEvent {
        /// the name of the object type that provides the event's parameters.
        arg_type = "arg-type": String,
    }
}

crate::qapi_union! {
    /// Information about a QMP command, event or type.
    pub union SchemaInfo: SchemaInfoBase,
    tag meta_type = "meta-type": SchemaMetaType at 1 => SchemaInfoVariant {
        Builtin(SchemaInfoBuiltin),
        Enum(SchemaInfoEnum),
        Array(SchemaInfoArray),
        Object(SchemaInfoObject),
        Alternate(SchemaInfoAlternate),
        Command(SchemaInfoCommand),
        Event(SchemaInfoEvent),
    }
}
