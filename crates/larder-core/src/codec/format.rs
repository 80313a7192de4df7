//! Payload codecs.

use std::io::{self, Write};

use serde::{Serialize, de::DeserializeOwned};

use super::CodecError;

/// The payload codec inside an envelope.
///
/// ```
/// use larder::codec::Format;
/// assert_ne!(Format::Json, Format::MessagePack);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// JSON (serde_json): readable in `redis-cli`, larger and slower.
    Json,
    /// MessagePack with field names (rmp-serde): compact and fast; tolerant of reordered fields.
    MessagePack,
}

impl Format {
    pub(super) fn id(self) -> u8 {
        match self {
            Self::Json => 1,
            Self::MessagePack => 2,
        }
    }

    pub(super) fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Json),
            2 => Some(Self::MessagePack),
            _ => None,
        }
    }

    fn error(self, e: impl std::fmt::Display) -> CodecError {
        CodecError::Payload {
            format: self,
            message: e.to_string(),
        }
    }

    pub(super) fn serialize_into<T: Serialize + ?Sized>(
        self,
        buf: &mut Vec<u8>,
        value: &T,
    ) -> Result<(), CodecError> {
        match self {
            Self::Json => serde_json::to_writer(buf, value).map_err(|e| self.error(e)),
            Self::MessagePack => {
                rmp_serde::encode::write_named(buf, value).map_err(|e| self.error(e))
            }
        }
    }

    /// Deserializes a payload written in this format (an [`Envelope`](super::Envelope)'s, or
    /// bytes from elsewhere); malformed or hostile bytes are an error, never a panic.
    ///
    /// ```
    /// use larder::codec::Format;
    /// assert_eq!(Format::Json.deserialize::<Vec<u8>>(b"[1,2]").unwrap(), vec![1, 2]);
    /// assert!(Format::MessagePack.deserialize::<String>(b"\xff\xff").is_err());
    /// ```
    pub fn deserialize<T: DeserializeOwned>(self, payload: &[u8]) -> Result<T, CodecError> {
        match self {
            Self::Json => serde_json::from_slice(payload).map_err(|e| self.error(e)),
            Self::MessagePack => rmp_serde::from_slice(payload).map_err(|e| self.error(e)),
        }
    }

    pub(super) fn encoded_len<T: Serialize + ?Sized>(self, value: &T) -> u64 {
        let mut counter = Counter(0);
        let ok = match self {
            Self::Json => serde_json::to_writer(&mut counter, value).is_ok(),
            Self::MessagePack => rmp_serde::encode::write_named(&mut counter, value).is_ok(),
        };
        if ok { counter.0 } else { 0 }
    }
}

/// A writer that only counts.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
