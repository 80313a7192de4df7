//! The envelope: how a value crosses a process boundary.
//!
//! ```text
//! offset size  field
//! 0      4     magic "LRDR"
//! 4      1     envelope format version (1)
//! 5      1     payload codec: 1 = JSON, 2 = MessagePack
//! 6      1     flags: bit 0 = payload is LZ4-compressed; other bits must be 0
//! 7      1     reserved, 0
//! 8      8     fresh_until, Unix milliseconds, big-endian
//! 16     8     stale_until, Unix milliseconds (the store's physical expiry)
//! 24     2     tag count n (≤ 1024)
//! ..           n × { u16 length, UTF-8 tag, u64 tag version }
//! ..     4     payload length once decompressed (≤ the decoder's limit)
//! ..           payload
//! ```
//!
//! Every length is checked against the bytes that are actually there and against a limit before
//! anything is allocated, so hostile, truncated or foreign bytes yield a [`CodecError`], never a
//! panic or an outsized allocation.

mod compress;
mod format;

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};

pub use format::Format;

const MAGIC: &[u8; 4] = b"LRDR";
const VERSION: u8 = 1;
const FLAG_LZ4: u8 = 0b1;
const MAX_TAGS: usize = 1024;
const FIXED_HEADER: usize = 26;

/// The largest payload, once decompressed, that [`Envelope::decode`] accepts by default.
pub const DEFAULT_MAX_DECODED: usize = 64 << 20;

/// Why bytes could not be encoded or decoded.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The bytes do not start with the envelope magic: not written by larder.
    #[error("not a larder envelope")]
    NotAnEnvelope,
    /// Written by an envelope format this version does not know.
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    /// Unknown payload codec id.
    #[error("unknown payload codec {0}")]
    UnknownFormat(u8),
    /// Unknown flag bits set.
    #[error("unknown envelope flags {0:#04x}")]
    UnknownFlags(u8),
    /// The bytes end before the header says they should.
    #[error("envelope truncated")]
    Truncated,
    /// A header field is out of range (too many tags, a tag that is not UTF-8, ...).
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
    /// The payload is larger than the decoder allows.
    #[error("payload of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Declared size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The compressed payload does not decompress to its declared size.
    #[error("corrupt compressed payload")]
    Decompress,
    /// The payload codec failed (the value does not serialize, or the payload does not
    /// deserialize into the requested type).
    #[error("{format:?} payload: {message}")]
    Payload {
        /// Which codec.
        format: Format,
        /// Its message.
        message: String,
    },
    /// A tag or the payload is too long for its length field.
    #[error("{0} too long to encode")]
    Oversize(&'static str),
}

/// How to encode: which payload codec and when to compress.
///
/// ```
/// use larder::codec::{EncodeOptions, Format};
/// let opts = EncodeOptions { format: Format::Json, compress_above: Some(1024) };
/// assert_eq!(EncodeOptions::default().format, Format::MessagePack);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// The payload codec.
    pub format: Format,
    /// Compress payloads of at least this many bytes with LZ4 (kept only if it saves space).
    pub compress_above: Option<usize>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            format: Format::MessagePack,
            compress_above: Some(4096),
        }
    }
}

/// A decoded (or to-be-encoded) envelope.
///
/// ```
/// use larder::codec::{EncodeOptions, Envelope};
///
/// let bytes = Envelope::encode(&vec![1u32, 2, 3], 2_000, 3_000, &[("t", 7)], EncodeOptions::default())?;
/// let env = Envelope::decode(&bytes)?;
/// assert_eq!((env.fresh_until_ms, env.stale_until_ms), (2_000, 3_000));
/// assert_eq!(env.tags, vec![("t".into(), 7)]);
/// assert_eq!(env.value::<Vec<u32>>()?, vec![1, 2, 3]);
/// # Ok::<(), larder::codec::CodecError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<'a> {
    /// The payload codec.
    pub format: Format,
    /// End of freshness, Unix milliseconds.
    pub fresh_until_ms: u64,
    /// End of the stale window, Unix milliseconds.
    pub stale_until_ms: u64,
    /// Tags with the version each had when the entry was written.
    pub tags: Vec<(Cow<'a, str>, u64)>,
    /// The payload, decompressed.
    pub payload: Cow<'a, [u8]>,
}

impl<'a> Envelope<'a> {
    /// Serializes `value` and wraps it in an envelope.
    pub fn encode<T: Serialize + ?Sized>(
        value: &T,
        fresh_until_ms: u64,
        stale_until_ms: u64,
        tags: &[(&str, u64)],
        opts: EncodeOptions,
    ) -> Result<Bytes, CodecError> {
        if tags.len() > MAX_TAGS {
            return Err(CodecError::Malformed("more than 1024 tags"));
        }
        let tag_bytes: usize = tags.iter().map(|(t, _)| 2 + t.len() + 8).sum();
        let header = FIXED_HEADER + tag_bytes + 4;
        let mut buf = Vec::with_capacity(header + 64);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&[VERSION, opts.format.id(), 0, 0]);
        buf.extend_from_slice(&fresh_until_ms.to_be_bytes());
        buf.extend_from_slice(&stale_until_ms.to_be_bytes());
        buf.extend_from_slice(&(tags.len() as u16).to_be_bytes());
        for (tag, version) in tags {
            let len = u16::try_from(tag.len()).map_err(|_| CodecError::Oversize("tag"))?;
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(tag.as_bytes());
            buf.extend_from_slice(&version.to_be_bytes());
        }
        let len_at = buf.len();
        buf.extend_from_slice(&[0; 4]);
        opts.format.serialize_into(&mut buf, value)?;
        let payload_len = buf.len() - header;
        let declared = u32::try_from(payload_len).map_err(|_| CodecError::Oversize("payload"))?;
        buf[len_at..header].copy_from_slice(&declared.to_be_bytes());
        if opts.compress_above.is_some_and(|min| payload_len >= min)
            && let Some(packed) = compress::compress(&buf[header..])
        {
            // A new buffer of the packed size: truncating the old one would keep its whole
            // capacity alive in the envelope (a 5 MB allocation behind a 25 kB value).
            let mut out = Vec::with_capacity(header + packed.len());
            out.extend_from_slice(&buf[..header]);
            out.extend_from_slice(&packed);
            out[6] = FLAG_LZ4;
            return Ok(Bytes::from(out));
        }
        Ok(Bytes::from(buf))
    }

    /// Parses and validates an envelope, decompressing the payload if needed, with
    /// [`DEFAULT_MAX_DECODED`] as the payload limit.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, CodecError> {
        Self::decode_with_limit(bytes, DEFAULT_MAX_DECODED)
    }

    /// Like [`decode`](Self::decode) with a payload limit of `max_decoded` bytes.
    pub fn decode_with_limit(bytes: &'a [u8], max_decoded: usize) -> Result<Self, CodecError> {
        let mut r = Reader(bytes);
        if r.take(4)? != MAGIC {
            return Err(CodecError::NotAnEnvelope);
        }
        let [version, codec, flags, _reserved] = r.array::<4>()?;
        if version != VERSION {
            return Err(CodecError::UnsupportedVersion(version));
        }
        let format = Format::from_id(codec).ok_or(CodecError::UnknownFormat(codec))?;
        if flags & !FLAG_LZ4 != 0 {
            return Err(CodecError::UnknownFlags(flags));
        }
        let fresh_until_ms = u64::from_be_bytes(r.array()?);
        let stale_until_ms = u64::from_be_bytes(r.array()?);
        let count = usize::from(u16::from_be_bytes(r.array()?));
        if count > MAX_TAGS {
            return Err(CodecError::Malformed("more than 1024 tags"));
        }
        let mut tags = Vec::with_capacity(count);
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes(r.array()?));
            let tag = std::str::from_utf8(r.take(len)?)
                .map_err(|_| CodecError::Malformed("tag is not UTF-8"))?;
            let version = u64::from_be_bytes(r.array()?);
            tags.push((Cow::Borrowed(tag), version));
        }
        let size = u32::from_be_bytes(r.array()?) as usize;
        if size > max_decoded {
            return Err(CodecError::TooLarge {
                size,
                limit: max_decoded,
            });
        }
        let rest = r.0;
        let payload = if flags & FLAG_LZ4 != 0 {
            Cow::Owned(compress::decompress(rest, size)?)
        } else if rest.len() == size {
            Cow::Borrowed(rest)
        } else if rest.len() < size {
            return Err(CodecError::Truncated);
        } else {
            return Err(CodecError::Malformed("trailing bytes after the payload"));
        };
        Ok(Self {
            format,
            fresh_until_ms,
            stale_until_ms,
            tags,
            payload,
        })
    }

    /// Deserializes the payload as `T`.
    pub fn value<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        self.format.deserialize(&self.payload)
    }
}

/// The payload size an envelope declares (its size once decompressed), read from the header
/// alone; `None` for bytes that are not an envelope.
pub(crate) fn payload_len(bytes: &[u8]) -> Option<u64> {
    let mut r = Reader(bytes);
    if r.take(4).ok()? != MAGIC {
        return None;
    }
    r.take(FIXED_HEADER - 6).ok()?;
    let count = usize::from(u16::from_be_bytes(r.array().ok()?));
    for _ in 0..count {
        let len = usize::from(u16::from_be_bytes(r.array().ok()?));
        r.take(len + 8).ok()?;
    }
    Some(u64::from(u32::from_be_bytes(r.array().ok()?)))
}

/// Serializes a value with `format` only to learn its size: the memory tier's default weight.
pub(crate) fn encoded_len<T: Serialize + ?Sized>(value: &T, format: Format) -> u64 {
    format.encoded_len(value)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
