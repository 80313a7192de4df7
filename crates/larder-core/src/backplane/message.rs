//! What travels on the backplane: who sent it and what to drop. MessagePack behind a short magic
//! and version, so a node skips foreign or future messages instead of misreading them; decoding
//! hostile bytes is an error, never a panic.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 3] = b"LBP";
const VERSION: u8 = 1;

/// What other nodes must drop from their memory tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Op<'a> {
    /// Entries written or deleted in namespace `ns`.
    Evict {
        #[serde(borrow)]
        ns: Cow<'a, str>,
        #[serde(borrow)]
        keys: Vec<Cow<'a, str>>,
    },
    /// Namespace `ns` cleared.
    Clear {
        #[serde(borrow)]
        ns: Cow<'a, str>,
    },
    /// Tags invalidated.
    Tags {
        #[serde(borrow)]
        tags: Vec<Cow<'a, str>>,
    },
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Message<'a> {
    /// The sending node, so that it can ignore its own messages.
    pub node: u64,
    /// When the change had reached the store, in the sender's wall-clock microseconds since the
    /// Unix epoch: a fetch a receiver started later is not superseded by it.
    pub at: u64,
    #[serde(borrow)]
    pub op: Op<'a>,
}

/// Why a message was not understood.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("not a larder backplane message")]
    Foreign,
    #[error("backplane message version {0}, this node reads {VERSION}")]
    Version(u8),
    #[error("malformed backplane message: {0}")]
    Malformed(#[from] rmp_serde::decode::Error),
}

impl<'a> Message<'a> {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        rmp_serde::encode::write(&mut out, self)?;
        Ok(out)
    }

    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let rest = bytes.strip_prefix(MAGIC).ok_or(DecodeError::Foreign)?;
        let (&version, body) = rest.split_first().ok_or(DecodeError::Foreign)?;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        Ok(rmp_serde::from_slice(body)?)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn every_kind_round_trips() {
        for op in [
            Op::Evict {
                ns: "users".into(),
                keys: vec!["1".into(), "a:b".into()],
            },
            Op::Clear { ns: "".into() },
            Op::Tags {
                tags: vec!["user:7".into()],
            },
        ] {
            let m = Message {
                node: 42,
                at: 1_700_000_000_000_000,
                op,
            };
            let bytes = m.encode().unwrap();
            assert_eq!(Message::decode(&bytes).unwrap(), m);
        }
    }

    #[test]
    fn foreign_and_future_messages_are_refused() {
        assert!(matches!(
            Message::decode(b"hello"),
            Err(DecodeError::Foreign)
        ));
        assert!(matches!(
            Message::decode(b"LBP\x09xx"),
            Err(DecodeError::Version(9))
        ));
        assert!(matches!(
            Message::decode(b"LBP\x01\xc1"),
            Err(DecodeError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Message::decode(&bytes);
            let mut framed = b"LBP\x01".to_vec();
            framed.extend_from_slice(&bytes);
            let _ = Message::decode(&framed);
        }

        #[test]
        fn evictions_round_trip(ns in ".{0,12}", keys in proptest::collection::vec(".{0,20}", 0..8), node: u64, at: u64) {
            let m = Message {
                node,
                at,
                op: Op::Evict { ns: ns.into(), keys: keys.into_iter().map(Into::into).collect() },
            };
            let bytes = m.encode().unwrap();
            prop_assert_eq!(Message::decode(&bytes).unwrap(), m);
        }
    }
}
