//! Memcached's meta protocol, the part the store speaks: requests written into a buffer, replies
//! parsed out of one. Pure functions over bytes, so a hostile or broken server's bytes are
//! checked here, once: a reply is complete, well-formed and within the bounds below, or the
//! connection is dropped.
//!
//! Requests (memcached ≥ 1.6): `mg <key> v [c]` (read, with the CAS), `ms <key> <len> T<secs>
//! [ME]` (write; `ME` is "add"), `md <key> [C<cas>]` (delete, if unchanged), `ma <key> v`
//! (increment a counter by one), `mn` (no-op: the ping).

use bytes::{Buf, Bytes, BytesMut};

/// The longest reply line accepted: a `VA` header with a few flags is far shorter.
const MAX_LINE: usize = 1024;
/// The largest value accepted from the server (memcached's item size limit is 1 MiB by default
/// and at most 1 GiB; larder's values are bounded well below this).
pub(crate) const MAX_VALUE: usize = 256 << 20;

/// One reply of the meta protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `VA <len> <flags>`: a value, and its CAS when `c` was asked for.
    Value { data: Bytes, cas: Option<u64> },
    /// `HD`: done (stored, deleted, incremented without a value asked for).
    Done,
    /// `NS`: not stored (an `add` of a key that exists).
    NotStored,
    /// `EX`: the CAS did not match.
    Exists,
    /// `NF`: not found (delete, increment).
    NotFound,
    /// `EN`: a read that missed.
    Miss,
    /// `MN`: the no-op's answer.
    NoOp,
    /// `SERVER_ERROR ...`: the server could not do this one (out of memory, an item too large);
    /// the connection stays in step.
    Failed(String),
}

/// Why a reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    /// The server did not understand a request (`ERROR`, `CLIENT_ERROR ...`): what it reads
    /// next may not be where a request starts, so the connection is not used again.
    #[error("memcached answered {0}")]
    Rejected(String),
    /// Bytes that are not a meta reply, or past the bounds.
    #[error("memcached sent a malformed reply: {0}")]
    Malformed(&'static str),
}

/// `mg <key> v` (with `c`, the CAS too).
pub(crate) fn get(out: &mut Vec<u8>, key: &[u8], with_cas: bool) {
    out.extend_from_slice(b"mg ");
    out.extend_from_slice(key);
    out.extend_from_slice(if with_cas { b" v c\r\n" } else { b" v\r\n" });
}

/// `ms <key> <len> T<secs>` then the data; `add` only stores when the key is absent.
pub(crate) fn set(out: &mut Vec<u8>, key: &[u8], parts: &[&[u8]], ttl_secs: i64, add: bool) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.extend_from_slice(b"ms ");
    out.extend_from_slice(key);
    out.push(b' ');
    push_number(out, len as u64);
    out.extend_from_slice(b" T");
    push_number(out, ttl_secs.max(0) as u64);
    if add {
        out.extend_from_slice(b" ME");
    }
    out.extend_from_slice(b"\r\n");
    for part in parts {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(b"\r\n");
}

/// `md <key>`, or with `C<cas>` only if the item is unchanged.
pub(crate) fn delete(out: &mut Vec<u8>, key: &[u8], cas: Option<u64>) {
    out.extend_from_slice(b"md ");
    out.extend_from_slice(key);
    if let Some(cas) = cas {
        out.extend_from_slice(b" C");
        push_number(out, cas);
    }
    out.extend_from_slice(b"\r\n");
}

/// `ma <key> v`: increments by one and returns the new value.
pub(crate) fn increment(out: &mut Vec<u8>, key: &[u8]) {
    out.extend_from_slice(b"ma ");
    out.extend_from_slice(key);
    out.extend_from_slice(b" v\r\n");
}

/// `mn`: answered with `MN`.
pub(crate) fn noop(out: &mut Vec<u8>) {
    out.extend_from_slice(b"mn\r\n");
}

fn push_number(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Takes one complete reply off the front of `buf`: `Ok(None)` when more bytes are needed (and
/// nothing is consumed).
pub(crate) fn parse(buf: &mut BytesMut) -> Result<Option<Reply>, WireError> {
    let Some(end) = find_crlf(buf) else {
        if buf.len() > MAX_LINE {
            return Err(WireError::Malformed("a reply line past 1 KiB"));
        }
        return Ok(None);
    };
    if end > MAX_LINE {
        return Err(WireError::Malformed("a reply line past 1 KiB"));
    }
    let line = &buf[..end];
    let (code, rest) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &[][..]),
    };
    let simple = match code {
        b"HD" => Some(Reply::Done),
        b"NS" => Some(Reply::NotStored),
        b"EX" => Some(Reply::Exists),
        b"NF" => Some(Reply::NotFound),
        b"EN" => Some(Reply::Miss),
        b"MN" => Some(Reply::NoOp),
        _ => None,
    };
    if let Some(reply) = simple {
        buf.advance(end + 2);
        return Ok(Some(reply));
    }
    match code {
        b"VA" => {
            let mut words = rest.split(|&b| b == b' ').filter(|w| !w.is_empty());
            let len = words
                .next()
                .and_then(parse_number)
                .ok_or(WireError::Malformed("VA without a length"))?;
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= MAX_VALUE)
                .ok_or(WireError::Malformed("a value past 256 MiB"))?;
            let mut cas = None;
            for flag in words {
                if let Some(n) = flag.strip_prefix(b"c") {
                    cas = Some(parse_number(n).ok_or(WireError::Malformed("a bad CAS"))?);
                }
            }
            let header = end + 2;
            if buf.len() < header + len + 2 {
                // The data has not all arrived: make room for it once, not chunk by chunk.
                buf.reserve(header + len + 2 - buf.len());
                return Ok(None);
            }
            if &buf[header + len..header + len + 2] != b"\r\n" {
                return Err(WireError::Malformed("a value not followed by CRLF"));
            }
            buf.advance(header);
            let data = buf.split_to(len).freeze();
            buf.advance(2);
            Ok(Some(Reply::Value { data, cas }))
        }
        b"SERVER_ERROR" => {
            let text = String::from_utf8_lossy(line).into_owned();
            buf.advance(end + 2);
            Ok(Some(Reply::Failed(text)))
        }
        b"ERROR" | b"CLIENT_ERROR" => Err(WireError::Rejected(
            String::from_utf8_lossy(line).into_owned(),
        )),
        _ => Err(WireError::Malformed("an unknown reply code")),
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    let limit = buf.len().min(MAX_LINE + 2);
    buf[..limit].windows(2).position(|w| w == b"\r\n")
}

fn parse_number(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replies(bytes: &[u8]) -> Vec<Result<Reply, WireError>> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        loop {
            match parse(&mut buf) {
                Ok(Some(r)) => out.push(Ok(r)),
                Ok(None) => return out,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }

    #[test]
    fn requests_are_written_as_the_meta_protocol_says() {
        let mut out = Vec::new();
        get(&mut out, b"larder:k", false);
        get(&mut out, b"lock", true);
        set(&mut out, b"k", &[b"ab", b"cd"], 60, false);
        set(&mut out, b"lock", &[b"t"], 0, true);
        delete(&mut out, b"k", None);
        delete(&mut out, b"lock", Some(42));
        increment(&mut out, b"gen");
        noop(&mut out);
        assert_eq!(
            out,
            b"mg larder:k v\r\nmg lock v c\r\nms k 4 T60\r\nabcd\r\nms lock 1 T0 ME\r\nt\r\n\
md k\r\nmd lock C42\r\nma gen v\r\nmn\r\n"
        );
    }

    #[test]
    fn replies_are_read_in_order_with_values_as_they_are() {
        let got = replies(b"VA 3 c77\r\nabc\r\nEN\r\nHD\r\nNS\r\nEX\r\nNF\r\nMN\r\nVA 0\r\n\r\n");
        let want = [
            Reply::Value {
                data: Bytes::from_static(b"abc"),
                cas: Some(77),
            },
            Reply::Miss,
            Reply::Done,
            Reply::NotStored,
            Reply::Exists,
            Reply::NotFound,
            Reply::NoOp,
            Reply::Value {
                data: Bytes::new(),
                cas: None,
            },
        ];
        assert_eq!(got, want.map(Ok).to_vec());
    }

    #[test]
    fn a_reply_split_anywhere_waits_for_the_rest() {
        let whole = b"VA 5 c9\r\nhello\r\nHD\r\n";
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            let first = parse(&mut buf).unwrap();
            if cut < 16 {
                assert_eq!(first, None, "cut at {cut}");
                assert_eq!(&buf[..], &whole[..cut], "nothing consumed");
            }
            buf.extend_from_slice(&whole[cut..]);
            let mut got = Vec::new();
            if let Some(r) = first {
                got.push(r);
            }
            while let Some(r) = parse(&mut buf).unwrap() {
                got.push(r);
            }
            assert_eq!(got.len(), 2, "cut at {cut}");
        }
    }

    #[test]
    fn hostile_replies_are_errors_not_panics_or_waits() {
        for bad in [
            &b"VA x\r\n"[..],
            b"VA 3\r\nabcXY",
            b"VA 99999999999999999999999\r\n",
            b"VA 300000000\r\n",
            b"VA 3 cx\r\nabc\r\n",
            b"ZZ\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
            b"ERROR\r\n",
        ] {
            assert!(
                matches!(replies(bad).last(), Some(Err(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            replies(b"SERVER_ERROR out of memory\r\nHD\r\n"),
            [
                Ok(Reply::Failed("SERVER_ERROR out of memory".into())),
                Ok(Reply::Done)
            ]
        );
        let endless = vec![b'a'; 4096];
        assert!(matches!(
            parse(&mut BytesMut::from(&endless[..])),
            Err(WireError::Malformed(_))
        ));
    }
}
