//! LZ4 block compression of payloads (pure Rust, `lz4_flex`, safe decoder).

use super::CodecError;

/// Compresses `data`, or `None` when that would not make it smaller.
pub(super) fn compress(data: &[u8]) -> Option<Vec<u8>> {
    let packed = lz4_flex::block::compress(data);
    (packed.len() < data.len()).then_some(packed)
}

/// Decompresses into exactly `size` bytes; the caller has checked `size` against its limit.
pub(super) fn decompress(data: &[u8], size: usize) -> Result<Vec<u8>, CodecError> {
    // LZ4 cannot expand input by more than 255×; a claim beyond that is a lie, refuse before
    // allocating.
    if size > data.len().saturating_mul(255).saturating_add(16) {
        return Err(CodecError::Decompress);
    }
    let out = lz4_flex::block::decompress(data, size).map_err(|_| CodecError::Decompress)?;
    if out.len() == size {
        Ok(out)
    } else {
        Err(CodecError::Decompress)
    }
}
