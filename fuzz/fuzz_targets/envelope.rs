#![no_main]
//! The envelope decoder on bytes from a hostile store: an error or an envelope, never a panic or an
//! outsized allocation; a decoded envelope's payload is within the limit, and its fields survive
//! being encoded again.
use larder::codec::{EncodeOptions, Envelope, Format};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(env) = Envelope::decode_with_limit(data, 1 << 20) else {
        return;
    };
    assert!(env.payload.len() <= 1 << 20);
    let tags: Vec<(&str, u64)> = env.tags.iter().map(|(t, v)| (t.as_ref(), *v)).collect();
    let payload = env.payload.to_vec();
    let opts = EncodeOptions {
        format: Format::MessagePack,
        compress_above: Some(64),
    };
    let again = Envelope::encode(
        &payload,
        env.fresh_until_ms,
        env.stale_until_ms,
        &tags,
        opts,
    )
    .expect("a decoded envelope encodes");
    let back = Envelope::decode(&again).expect("and decodes");
    assert_eq!(
        (back.fresh_until_ms, back.stale_until_ms),
        (env.fresh_until_ms, env.stale_until_ms)
    );
    assert_eq!(back.tags, env.tags);
    assert_eq!(back.value::<Vec<u8>>().expect("the payload"), payload);
});
