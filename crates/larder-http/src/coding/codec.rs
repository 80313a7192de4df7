//! The encoders and decoders (async-compression's codecs, driven directly: input and output are
//! buffers the caller sizes, so no call produces more than it was given room for, whatever a
//! hostile stream expands to), and the one-shot compression of a body being stored.

use std::io;

use compression_codecs::brotli::params::EncoderParams as BrotliParams;
use compression_codecs::core::Level;
use compression_codecs::core::util::PartialBuffer;
use compression_codecs::zstd::params::{CParameter, DParameter};
use compression_codecs::{
    BrotliDecoder, BrotliEncoder, Decode, Encode, GzipDecoder, GzipEncoder, ZstdDecoder,
    ZstdEncoder,
};

use super::{Coding, CompressionLevel};

/// The largest zstd window a decoder accepts (8 MiB, as browsers do): a stream asking more is
/// an error, not an allocation.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// One coder's state.
pub(crate) enum Coder {
    GzipEncode(Box<GzipEncoder>),
    BrotliEncode(Box<BrotliEncoder>),
    ZstdEncode(Box<ZstdEncoder>),
    GzipDecode(Box<GzipDecoder>),
    BrotliDecode(Box<BrotliDecoder>),
    ZstdDecode(Box<ZstdDecoder>),
}

impl std::fmt::Debug for Coder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Self::GzipEncode(_) => "gzip encoder",
            Self::BrotliEncode(_) => "br encoder",
            Self::ZstdEncode(_) => "zstd encoder",
            Self::GzipDecode(_) => "gzip decoder",
            Self::BrotliDecode(_) => "br decoder",
            Self::ZstdDecode(_) => "zstd decoder",
        };
        f.write_str(name)
    }
}

/// The (gzip, br, zstd) levels of each setting.
fn levels(level: CompressionLevel) -> (i32, i32, i32) {
    match level {
        CompressionLevel::Fastest => (1, 1, 1),
        CompressionLevel::Default => (6, 5, 3),
        CompressionLevel::Best => (9, 11, 19),
    }
}

impl Coder {
    /// An encoder; `streaming` ones (a response encoded as it goes out) keep a smaller window.
    pub fn encoder(c: Coding, level: CompressionLevel, streaming: bool) -> Self {
        let (gzip, br, zstd) = levels(level);
        match c {
            Coding::Gzip => {
                Self::GzipEncode(Box::new(GzipEncoder::new(Level::Precise(gzip).into())))
            }
            Coding::Brotli => {
                let params = BrotliParams::default()
                    .quality(Level::Precise(br))
                    .window_size(if streaming { 20 } else { 22 });
                Self::BrotliEncode(Box::new(BrotliEncoder::new(params)))
            }
            Coding::Zstd => {
                let window = if streaming { 20 } else { 22 };
                Self::ZstdEncode(Box::new(ZstdEncoder::new_with_params(
                    zstd,
                    &[CParameter::window_log(window)],
                )))
            }
        }
    }

    pub fn decoder(c: Coding) -> Self {
        match c {
            Coding::Gzip => Self::GzipDecode(Box::new(GzipDecoder::new())),
            Coding::Brotli => Self::BrotliDecode(Box::new(BrotliDecoder::new())),
            Coding::Zstd => Self::ZstdDecode(Box::new(ZstdDecoder::new_with_params(&[
                DParameter::window_log_max(ZSTD_WINDOW_LOG_MAX),
            ]))),
        }
    }

    /// What a coder may allocate, at most, for its windows and tables: what it holds of the
    /// layer's budget while it works.
    pub fn memory(c: Coding, encode: bool) -> u64 {
        const KIB: u64 = 1 << 10;
        const MIB: u64 = 1 << 20;
        match (c, encode) {
            (Coding::Gzip, true) => 384 * KIB,
            (Coding::Gzip, false) => 64 * KIB,
            (Coding::Brotli, true) => 3 * MIB,
            // A stream may ask for a 16 MiB window.
            (Coding::Brotli, false) => 17 * MIB,
            (Coding::Zstd, true) => 3 * MIB,
            (Coding::Zstd, false) => 9 * MIB,
        }
    }

    pub fn is_decoder(&self) -> bool {
        matches!(
            self,
            Self::GzipDecode(_) | Self::BrotliDecode(_) | Self::ZstdDecode(_)
        )
    }

    /// Codes from `input` into `out`; for a decoder, whether its stream ended.
    pub fn run(
        &mut self,
        input: &mut PartialBuffer<&[u8]>,
        out: &mut PartialBuffer<&mut [u8]>,
    ) -> io::Result<bool> {
        match self {
            Self::GzipEncode(e) => e.encode(input, out).map(|()| false),
            Self::BrotliEncode(e) => e.encode(input, out).map(|()| false),
            Self::ZstdEncode(e) => e.encode(input, out).map(|()| false),
            Self::GzipDecode(d) => d.decode(input, out),
            Self::BrotliDecode(d) => d.decode(input, out),
            Self::ZstdDecode(d) => d.decode(input, out),
        }
    }

    /// Pushes out what the coder holds back; whether it is all out.
    pub fn flush(&mut self, out: &mut PartialBuffer<&mut [u8]>) -> io::Result<bool> {
        match self {
            Self::GzipEncode(e) => e.flush(out),
            Self::BrotliEncode(e) => e.flush(out),
            Self::ZstdEncode(e) => e.flush(out),
            Self::GzipDecode(d) => d.flush(out),
            Self::BrotliDecode(d) => d.flush(out),
            Self::ZstdDecode(d) => d.flush(out),
        }
    }

    /// Ends the stream; whether all of it is out.
    pub fn finish(&mut self, out: &mut PartialBuffer<&mut [u8]>) -> io::Result<bool> {
        match self {
            Self::GzipEncode(e) => e.finish(out),
            Self::BrotliEncode(e) => e.finish(out),
            Self::ZstdEncode(e) => e.finish(out),
            Self::GzipDecode(d) => d.finish(out),
            Self::BrotliDecode(d) => d.finish(out),
            Self::ZstdDecode(d) => d.finish(out),
        }
    }
}

/// `body` compressed whole with `c` at `level` (a copy being stored).
pub(crate) fn compress(c: Coding, level: CompressionLevel, body: &[u8]) -> io::Result<Vec<u8>> {
    let mut coder = Coder::encoder(c, level, false);
    let mut out = Vec::with_capacity(body.len() / 3 + 64);
    let mut chunk = vec![0u8; 64 << 10];
    let mut input = PartialBuffer::new(body);
    while !input.unwritten().is_empty() {
        let mut o = PartialBuffer::new(&mut chunk[..]);
        coder.run(&mut input, &mut o)?;
        let n = o.written_len();
        out.extend_from_slice(&chunk[..n]);
    }
    loop {
        let mut o = PartialBuffer::new(&mut chunk[..]);
        let done = coder.finish(&mut o)?;
        let n = o.written_len();
        out.extend_from_slice(&chunk[..n]);
        if done {
            return Ok(out);
        }
    }
}

/// `body` decoded whole (for tests and checks), refusing to grow past `limit`.
#[cfg(test)]
pub(crate) fn decompress(c: Coding, body: &[u8], limit: usize) -> io::Result<Vec<u8>> {
    let mut coder = Coder::decoder(c);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 16 << 10];
    let mut input = PartialBuffer::new(body);
    loop {
        let mut o = PartialBuffer::new(&mut chunk[..]);
        let ended = coder.run(&mut input, &mut o)?;
        let n = o.written_len();
        out.extend_from_slice(&chunk[..n]);
        if out.len() > limit {
            return Err(io::Error::other("past the limit"));
        }
        if ended || (input.unwritten().is_empty() && n == 0) {
            break;
        }
    }
    loop {
        let mut o = PartialBuffer::new(&mut chunk[..]);
        let done = coder.finish(&mut o)?;
        let n = o.written_len();
        out.extend_from_slice(&chunk[..n]);
        if done {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_coding_round_trips_and_shrinks_json() {
        let body: Vec<u8> = (0..2000)
            .flat_map(|i| format!("{{\"id\":{i},\"name\":\"user {i}\"}},").into_bytes())
            .collect();
        for c in [Coding::Gzip, Coding::Brotli, Coding::Zstd] {
            for level in [CompressionLevel::Fastest, CompressionLevel::Default] {
                let packed = compress(c, level, &body).unwrap();
                assert!(
                    packed.len() * 4 < body.len(),
                    "{c} {level:?}: {}",
                    packed.len()
                );
                assert_eq!(decompress(c, &packed, 1 << 30).unwrap(), body, "{c}");
            }
        }
    }

    #[test]
    fn a_bomb_is_cut_at_the_limit_not_held_whole() {
        let zeros = vec![0u8; 64 << 20];
        let bomb = compress(Coding::Gzip, CompressionLevel::Best, &zeros).unwrap();
        assert!(bomb.len() < 100 << 10);
        assert!(decompress(Coding::Gzip, &bomb, 1 << 20).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for c in [Coding::Gzip, Coding::Zstd] {
            assert!(decompress(c, b"\x1f\x8b\x08garbage that is not compressed", 1 << 20).is_err());
        }
        // Brotli has no magic number: some garbage reads as a short stream; it must not panic.
        let _ = decompress(Coding::Brotli, b"garbage that is not compressed", 1 << 20);
    }
}
