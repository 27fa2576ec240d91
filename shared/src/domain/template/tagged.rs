//! Serde plumbing for Meta's `"type"`-tagged objects that must survive unknown tags.
//!
//! Meta adds component and button types without notice (CAROUSEL, VOICE_CALL, ...). A
//! catalog sync must keep them rather than fail, so each tagged enum has an `Other`
//! variant holding the raw JSON, and known variants keep their unknown fields too.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The object's `type` tag, upper-cased (Meta writes `BODY`, some tools write `body`),
/// and the object without it.
pub(super) fn split_tag(value: &Value) -> Option<(String, Map<String, Value>)> {
    let mut map = value.as_object()?.clone();
    let tag = match map.remove("type")? {
        Value::String(s) => s.to_ascii_uppercase(),
        _ => return None,
    };
    Some((tag, map))
}

/// Deserialize the untagged remainder of a known variant.
pub(super) fn body<T: DeserializeOwned, E: serde::de::Error>(
    map: Map<String, Value>,
    tag: &str,
) -> Result<T, E> {
    serde_json::from_value(Value::Object(map)).map_err(|e| E::custom(format!("{tag}: {e}")))
}

/// Serialize a known variant back with its tag first, as Meta writes it.
pub(super) fn with_tag<T: Serialize, S: serde::Serializer>(
    tag: &str,
    body: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let inner = serde_json::to_value(body).map_err(serde::ser::Error::custom)?;
    let mut out = Map::new();
    out.insert("type".to_owned(), Value::String(tag.to_owned()));
    if let Value::Object(fields) = inner {
        out.extend(fields);
    }
    Value::Object(out).serialize(serializer)
}

/// The error for an object that has no string `type`.
pub(super) fn missing_tag<E: serde::de::Error>(what: &str) -> E {
    E::custom(format!("{what} without a string \"type\""))
}

/// Declares a string enum with known upper-case values and an `Other(String)` fallback,
/// serialized as the bare string.
macro_rules! open_string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A value this build does not know; kept verbatim.
            Other(String),
        }

        impl $name {
            /// The value as Meta writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.to_ascii_uppercase().as_str() {
                    $($text => $name::$variant,)+
                    _ => $name::Other(s),
                }
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_owned()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(super) use open_string_enum;
