//! A body encoded or decoded as it goes out: one coder over the body it wraps (a transcoding is
//! an encoder over a decoder), at most [`OUT`] bytes per frame whatever the input expands to,
//! and an encoder flushed whenever its input has to wait, so a streamed response is not held
//! back in the compressor.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use compression_codecs::core::util::PartialBuffer;
use http::HeaderMap;
use http_body::{Body, Frame};

use super::codec::Coder;
use crate::body::BoxError;
use crate::budget::Hold;

/// The most one frame of coded output holds.
const OUT: usize = 32 << 10;

/// `inner`, passed through a coder.
pub(crate) struct Coded<I> {
    inner: Pin<Box<I>>,
    coder: Coder,
    /// Input taken from `inner` and not yet coded.
    input: Bytes,
    inner_done: bool,
    /// A decoder saw its stream's end.
    stream_ended: bool,
    finished: bool,
    /// An encoder took input since it last flushed.
    unflushed: bool,

    trailers: Option<HeaderMap>,
    /// The coder's working memory, held from the layer's budget and the cache's bound.
    _hold: Hold,
}

impl<I> Coded<I> {
    pub fn new(inner: I, coder: Coder, hold: Hold) -> Self {
        Self {
            inner: Box::pin(inner),
            coder,
            input: Bytes::new(),
            inner_done: false,
            stream_ended: false,
            finished: false,
            unflushed: false,
            trailers: None,
            _hold: hold,
        }
    }

    pub fn is_end(&self) -> bool {
        self.finished && self.trailers.is_none()
    }

    /// Runs `step` on a fresh output buffer: the frame it wrote, if any.
    fn with_output(
        step: impl FnOnce(&mut PartialBuffer<&mut [u8]>) -> std::io::Result<bool>,
    ) -> std::io::Result<(Option<Bytes>, bool)> {
        let mut buf = vec![0u8; OUT];
        let mut out = PartialBuffer::new(&mut buf[..]);
        let flag = step(&mut out)?;
        let n = out.written_len();
        buf.truncate(n);
        Ok(((n > 0).then(|| Bytes::from(buf)), flag))
    }
}

fn coding_error(e: std::io::Error) -> BoxError {
    Box::new(std::io::Error::new(
        e.kind(),
        format!("content coding: {e}"),
    ))
}

impl<I> Body for Coded<I>
where
    I: Body<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if this.finished {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            if !this.input.is_empty() && !this.stream_ended {
                let input = &mut this.input;
                let coder = &mut this.coder;
                let mut used = 0;
                let step = Self::with_output(|out| {
                    let mut from = PartialBuffer::new(&input[..]);
                    let ended = coder.run(&mut from, out);
                    used = from.written_len();
                    ended
                });
                let (frame, ended) = match step {
                    Ok(r) => r,
                    Err(e) => return Poll::Ready(Some(Err(coding_error(e)))),
                };
                this.input.advance(used);
                if ended {
                    // Whatever follows a decoded stream's end is not part of it.
                    this.stream_ended = true;
                    this.input.clear();
                }
                this.unflushed |= !this.coder.is_decoder();
                if let Some(frame) = frame {
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                if used == 0 && !ended {
                    return Poll::Ready(Some(Err(coding_error(std::io::Error::other(
                        "the coder made no progress",
                    )))));
                }
                continue;
            }
            if this.inner_done || this.stream_ended {
                // The end: what the coder still holds, then its stream's end. A decoder that
                // has nothing more to give before its stream ended was cut short.
                let coder = &mut this.coder;
                let step = Self::with_output(|out| coder.finish(out));
                match step {
                    Ok((frame, done)) => {
                        if !done && frame.is_none() {
                            this.finished = true;
                            return Poll::Ready(Some(Err(coding_error(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "the compressed body ended before its stream did",
                            )))));
                        }
                        this.finished = done;
                        if let Some(frame) = frame {
                            return Poll::Ready(Some(Ok(Frame::data(frame))));
                        }
                        continue;
                    }
                    Err(e) => {
                        this.finished = true;
                        return Poll::Ready(Some(Err(coding_error(e))));
                    }
                }
            }
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => this.input = data,
                    Err(frame) => this.trailers = frame.into_trailers().ok(),
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => this.inner_done = true,
                Poll::Pending => {
                    if this.unflushed {
                        // The input waits: what the encoder holds goes out now.
                        this.unflushed = false;
                        let coder = &mut this.coder;
                        match Self::with_output(|out| coder.flush(out)) {
                            Ok((Some(frame), flushed)) => {
                                this.unflushed = !flushed;
                                return Poll::Ready(Some(Ok(Frame::data(frame))));
                            }
                            Ok((None, _)) => {}
                            Err(e) => return Poll::Ready(Some(Err(coding_error(e)))),
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.is_end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coding::codec::{compress, decompress};
    use crate::coding::{Coding, CompressionLevel};
    use http_body_util::BodyExt;

    fn hold() -> Hold {
        let cache = larder::Cache::new();
        let budgets = crate::budget::Budgets {
            layer: crate::budget::Budget::new(u64::MAX),
            oversize: None,
        };
        Hold::new(&budgets, &cache)
    }

    /// A body of these chunks, with a pause (Pending once) before each.
    fn chunks(parts: Vec<Bytes>) -> impl Body<Data = Bytes, Error = BoxError> {
        let stream = futures::stream::iter(parts).then(|p| async move {
            tokio::task::yield_now().await;
            Ok::<_, BoxError>(Frame::data(p))
        });
        http_body_util::StreamBody::new(stream)
    }

    use futures::StreamExt;

    #[tokio::test]
    async fn encoding_then_decoding_gives_the_body_back_in_bounded_frames() {
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let parts: Vec<Bytes> = text.chunks(7000).map(Bytes::copy_from_slice).collect();
        for c in [Coding::Gzip, Coding::Brotli, Coding::Zstd] {
            let enc = Coded::new(
                chunks(parts.clone()),
                Coder::encoder(c, CompressionLevel::Fastest, true),
                hold(),
            );
            let packed = enc.collect().await.unwrap().to_bytes();
            assert_eq!(decompress(c, &packed, 1 << 30).unwrap(), text, "{c}");
            let dec = Coded::new(chunks(vec![packed.clone()]), Coder::decoder(c), hold());
            let mut dec = std::pin::pin!(dec);
            let mut back = Vec::new();
            while let Some(frame) = dec.frame().await {
                let data = frame.unwrap().into_data().unwrap();
                assert!(data.len() <= OUT);
                back.extend_from_slice(&data);
            }
            assert_eq!(back, text, "{c}");
        }
    }

    #[tokio::test]
    async fn a_streamed_encoding_sends_each_chunk_before_the_next_arrives() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Frame<Bytes>, BoxError>>();
        let body = http_body_util::StreamBody::new(rx);
        let mut enc = std::pin::pin!(Coded::new(
            body,
            Coder::encoder(Coding::Gzip, CompressionLevel::Fastest, true),
            hold(),
        ));
        tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"event one\n"))))
            .unwrap();
        let mut got = Vec::new();
        loop {
            match futures::poll!(enc.frame()) {
                Poll::Ready(Some(Ok(frame))) => got.extend_from_slice(&frame.into_data().unwrap()),
                Poll::Pending => break,
                other => panic!("{:?}", other.map(|f| f.map(|r| r.is_ok()))),
            }
        }
        // The input now waits, and what was sent so far decodes to the whole first event.
        assert!(partial_decode(&got).starts_with(b"event one\n"), "{got:?}");
        drop(tx);
    }

    /// What a gzip stream so far decodes to (it may lack its end).
    fn partial_decode(partial: &[u8]) -> Vec<u8> {
        let mut coder = Coder::decoder(Coding::Gzip);
        let mut buf = vec![0u8; 1 << 16];
        let mut out = PartialBuffer::new(&mut buf[..]);
        let mut input = PartialBuffer::new(partial);
        let _ = coder.run(&mut input, &mut out);
        let n = out.written_len();
        buf.truncate(n);
        buf
    }

    #[tokio::test]
    async fn a_truncated_or_corrupt_stream_is_an_error() {
        let packed = compress(Coding::Gzip, CompressionLevel::Default, &[b'x'; 50_000]).unwrap();
        let cut = Bytes::copy_from_slice(&packed[..packed.len() / 2]);
        let dec = Coded::new(chunks(vec![cut]), Coder::decoder(Coding::Gzip), hold());
        assert!(dec.collect().await.is_err());
        let junk = Bytes::from_static(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xffjunkjunkjunk");
        let dec = Coded::new(chunks(vec![junk]), Coder::decoder(Coding::Gzip), hold());
        assert!(dec.collect().await.is_err());
    }
}
