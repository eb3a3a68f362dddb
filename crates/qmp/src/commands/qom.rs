//! Reading and writing properties of the objects in the machine's QOM
//! tree, by path.

use crate::json::Value;

crate::qapi_command! {
    /// Get a property value.  Returns the property value, in the form
    /// its type gives.
    "qom-get" => pub struct QomGet {
        /// The path within the object model (absolute, or a partial path
        /// that names one object).
        path: String,
        /// The property name to read
        property: String,
    } -> Value
}

crate::qapi_command! {
    /// Set a property value.
    "qom-set" => pub struct QomSet {
        /// see qom-get for a description of this parameter
        path: String,
        /// the property name to set
        property: String,
        /// a value who's type is appropriate for the property type.
        value: Value,
    } -> ()
}
