use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Value {
    name: String,
    id: i64,
    ratio: f64,
    blob: Vec<u8>,
    maybe: Option<bool>,
    map: BTreeMap<String, u32>,
    nested: Vec<(u16, String)>,
}

fn value() -> impl Strategy<Value = Value> {
    (
        any::<String>(),
        any::<i64>(),
        -1e12f64..1e12,
        proptest::collection::vec(any::<u8>(), 0..2048),
        any::<Option<bool>>(),
        proptest::collection::btree_map(any::<String>(), any::<u32>(), 0..8),
        proptest::collection::vec((any::<u16>(), "[a-z]{0,40}"), 0..40),
    )
        .prop_map(|(name, id, ratio, blob, maybe, map, nested)| Value {
            name,
            id,
            ratio,
            blob,
            maybe,
            map,
            nested,
        })
}

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::Json), Just(Format::MessagePack)]
}

proptest! {
    #[test]
    fn values_round_trip(
        v in value(),
        format in format(),
        compress_above in proptest::option::of(0usize..512),
        fresh in any::<u64>(),
        stale in any::<u64>(),
        tags in proptest::collection::vec(("\\PC{0,20}", any::<u64>()), 0..5),
    ) {
        let tag_refs: Vec<(&str, u64)> = tags.iter().map(|(t, v)| (t.as_str(), *v)).collect();
        let opts = EncodeOptions { format, compress_above };
        let bytes = Envelope::encode(&v, fresh, stale, &tag_refs, opts).unwrap();
        let env = Envelope::decode(&bytes).unwrap();
        prop_assert_eq!(env.format, format);
        prop_assert_eq!(env.fresh_until_ms, fresh);
        prop_assert_eq!(env.stale_until_ms, stale);
        let got: Vec<(&str, u64)> = env.tags.iter().map(|(t, v)| (t.as_ref(), *v)).collect();
        prop_assert_eq!(got, tag_refs);
        let back: Value = env.value().unwrap();
        // JSON may round floats in the last digit; compare the rest exactly.
        prop_assert!((back.ratio - v.ratio).abs() <= v.ratio.abs() * 1e-15);
        prop_assert_eq!(Value { ratio: 0.0, ..back }, Value { ratio: 0.0, ..v });
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(env) = Envelope::decode(&bytes) {
            let _ = env.value::<Value>();
            let _ = env.value::<serde_json::Value>();
        }
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..512),
        flags in any::<u8>(),
        codec in any::<u8>(),
    ) {
        let mut bytes = b"LRDR".to_vec();
        bytes.extend_from_slice(&[VERSION, codec, flags, 0]);
        bytes.extend_from_slice(&tail);
        if let Ok(env) = Envelope::decode(&bytes) {
            let _ = env.value::<Value>();
        }
    }

    #[test]
    fn truncated_or_flipped_envelopes_never_panic(
        v in value(),
        format in format(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let opts = EncodeOptions { format, compress_above: Some(64) };
        let bytes = Envelope::encode(&v, 1, 2, &[("tag", 1)], opts).unwrap();
        let truncated = &bytes[..cut.index(bytes.len())];
        prop_assert!(Envelope::decode(truncated).is_err());
        let mut flipped = bytes.to_vec();
        let i = flip.index(flipped.len());
        flipped[i] ^= 1 << bit;
        if let Ok(env) = Envelope::decode(&flipped) {
            let _ = env.value::<Value>();
        }
    }
}

#[test]
fn foreign_bytes_are_not_an_envelope() {
    assert!(matches!(
        Envelope::decode(b"{\"json\": true}"),
        Err(CodecError::NotAnEnvelope)
    ));
    assert!(matches!(Envelope::decode(b""), Err(CodecError::Truncated)));
}

#[test]
fn a_lying_size_is_refused_before_allocating() {
    let bytes = Envelope::encode(&"x".repeat(10_000), 1, 2, &[], EncodeOptions::default()).unwrap();
    let mut forged = bytes.to_vec();
    // The declared size sits right before the payload: 4 bytes after the (tag-less) fixed header.
    forged[FIXED_HEADER..FIXED_HEADER + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Envelope::decode(&forged),
        Err(CodecError::TooLarge { .. })
    ));
    assert!(Envelope::decode_with_limit(&forged, usize::MAX).is_err());
}

#[test]
fn large_payloads_are_compressed_and_small_ones_are_not() {
    let big = "abc".repeat(10_000);
    let bytes = Envelope::encode(&big, 1, 2, &[], EncodeOptions::default()).unwrap();
    assert!(bytes.len() < big.len() / 10);
    assert_eq!(bytes[6], FLAG_LZ4);
    let small = Envelope::encode(&"abc", 1, 2, &[], EncodeOptions::default()).unwrap();
    assert_eq!(small[6], 0);
}

#[test]
fn reading_as_the_wrong_type_is_an_error() {
    let bytes = Envelope::encode(&"text", 1, 2, &[], EncodeOptions::default()).unwrap();
    let env = Envelope::decode(&bytes).unwrap();
    assert!(matches!(
        env.value::<u64>(),
        Err(CodecError::Payload { .. })
    ));
}

#[test]
fn the_declared_payload_size_is_the_decoded_one_compressed_or_not() {
    let value = "a".repeat(100_000);
    for compress_above in [None, Some(1024)] {
        let opts = EncodeOptions {
            format: Format::MessagePack,
            compress_above,
        };
        let bytes = Envelope::encode(&value, 1, 2, &[("tag", 3), ("t2", 4)], opts).unwrap();
        let decoded = Envelope::decode(&bytes).unwrap().payload.len() as u64;
        assert_eq!(payload_len(&bytes), Some(decoded));
        if compress_above.is_some() {
            assert!((bytes.len() as u64) < decoded / 10, "compressible");
        }
    }
    assert_eq!(payload_len(b"LRDR"), None);
    assert_eq!(payload_len(b"nope, not an envelope at all....."), None);
}
