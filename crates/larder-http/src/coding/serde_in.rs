//! [`Compression`] as configuration files and larder for Python write it: `true` / `false`, or a
//! table of the settings to change (the rest keep their defaults), unknown keys refused.
//!
//! ```toml
//! [compression]
//! encodings = ["br", "gzip"]
//! level = "best"
//! min_size = "2KiB"
//! ```

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::{Coding, Compression, CompressionLevel};

impl<'de> Deserialize<'de> for Coding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for CompressionLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "fastest" => Ok(Self::Fastest),
            "default" => Ok(Self::Default),
            "best" => Ok(Self::Best),
            other => Err(de::Error::custom(format!(
                "level: {other:?} is not \"fastest\", \"default\" or \"best\""
            ))),
        }
    }
}

/// The keys a table may set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    enabled: Option<bool>,
    encodings: Option<Vec<Coding>>,
    level: Option<CompressionLevel>,
    #[serde(default, deserialize_with = "size")]
    min_size: Option<u64>,
    types: Option<Vec<String>>,
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bytes(n) => Ok(Some(n)),
        Raw::Text(t) => crate::parse_size(&t).map(Some).map_err(de::Error::custom),
    }
}

impl<'de> Deserialize<'de> for Compression {
    /// ```
    /// let c: larder_http::Compression = serde_json::from_str(r#"{"encodings": ["br"], "min_size": "2KiB"}"#).unwrap();
    /// assert_eq!((c.encodings[0].as_str(), c.min_size), ("br", 2048));
    /// let off: larder_http::Compression = serde_json::from_str("false").unwrap();
    /// assert!(!off.enabled);
    /// assert!(serde_json::from_str::<larder_http::Compression>(r#"{"encodings": ["lz4"]}"#).is_err());
    /// ```
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Expect;
        impl<'de> Visitor<'de> for Expect {
            type Value = Compression;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false, or a table of compression settings")
            }

            fn visit_bool<E: de::Error>(self, on: bool) -> Result<Compression, E> {
                Ok(if on {
                    Compression::default()
                } else {
                    Compression::off()
                })
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Compression, M::Error> {
                let t = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let d = Compression::default();
                let c = Compression {
                    enabled: t.enabled.unwrap_or(d.enabled),
                    encodings: t.encodings.unwrap_or(d.encodings),
                    level: t.level.unwrap_or(d.level),
                    min_size: t.min_size.unwrap_or(d.min_size),
                    types: t.types.unwrap_or(d.types),
                };
                c.check().map_err(de::Error::custom)?;
                Ok(c)
            }
        }
        d.deserialize_any(Expect)
    }
}
