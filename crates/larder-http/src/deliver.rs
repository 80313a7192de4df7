//! Stored bodies being sent. A response served from the cache holds its body until the client
//! has read it, and slow clients of many large responses used to hold far more than the memory
//! bound: an entry evicted to make room for newer ones stayed in memory, uncounted, for as long
//! as it was being sent (as an object in delivery stays in Varnish).
//!
//! Now a large body goes out as slices of the stored body (no copy), each holding the [`Kept`]
//! response, whose value is the memory tier's own: while any slice is still queued for the
//! socket, the tier sees the entry in use and does not evict it, so the bound keeps counting
//! its bytes until the last of them is sent. Under pressure the tier then makes room from
//! entries not in use, and when every large entry is in use, new ones are not kept.
//!
//! [`Kept`]: crate::stored::Kept

use std::task::{Context, Poll};

use bytes::Bytes;

/// Bodies at least this long go out in slices (smaller ones in one piece: part of each
/// connection's fixed overhead). The memory tier keeps entries of 64 KiB and more while in use.
pub(crate) const LARGE: usize = 64 << 10;
/// The size of the slices a large body is sent in: small enough that the body is pulled as the
/// socket drains, large enough to cost nothing.
const PIECE: usize = 256 << 10;

/// A large stored body on its way out, as slices of bytes that keep their response held.
pub(crate) struct Delivery {
    rest: Bytes,
}

impl Delivery {
    pub fn new(body: Bytes) -> Self {
        Self { rest: body }
    }

    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next slice; `None` at the end.
    pub fn poll_piece(&mut self, _cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(self.rest.split_to(self.rest.len().min(PIECE))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::Kept;

    #[test]
    fn a_large_body_goes_out_in_slices_that_hold_their_response() {
        let kept = Kept::new(crate::stored::tests::response(vec![7u8; 1 << 20]));
        let weak = kept.weak();
        let mut d = Delivery::new(kept.body());
        drop(kept);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut pieces = Vec::new();
        while let Poll::Ready(Some(p)) = d.poll_piece(&mut cx) {
            pieces.push(p);
        }
        assert_eq!(pieces.len(), 4);
        assert_eq!(pieces.iter().map(Bytes::len).sum::<usize>(), 1 << 20);
        drop(d);
        let last = pieces.pop().unwrap();
        drop(pieces);
        assert!(
            weak.upgrade().is_some(),
            "the last slice still holds the response"
        );
        drop(last);
        assert!(weak.upgrade().is_none());
    }
}
