//! SPDY/3 header blocks: the name/value layout, and the per-direction zlib
//! streams with the SPDY/3 dictionary (PROTOCOLS.md §5.3).
//!
//! One [`HeaderCompressor`] and one [`HeaderDecompressor`] live for the whole
//! session, one per direction: every SYN_STREAM, SYN_REPLY and HEADERS frame
//! continues the same zlib stream, and each block ends with a sync flush.

use bytes::{BufMut, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use super::dictionary::{SPDY3_DICTIONARY, SPDY3_DICTIONARY_ADLER32};
use crate::error::{DecodeError, UsageError};

/// Header name/value pairs in wire order. Names are stored lower-case, as
/// spdystream sends them, and matched case-insensitively; a value holding
/// several values keeps spdystream's NUL separators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pairs: Vec<(String, String)>,
}

impl Headers {
    /// No headers (the Kubernetes SYN_REPLY).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a pair, lower-casing the name.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let mut name = name.into();
        name.make_ascii_lowercase();
        self.pairs.push((name, value.into()));
    }

    /// Builder form of [`insert`](Self::insert).
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(name, value);
        self
    }

    /// The first value under `name`, matched case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All pairs in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Appends the uncompressed block layout: count, then length-prefixed
    /// names and values, all u32 big-endian.
    pub fn encode_block(&self, dst: &mut Vec<u8>) -> Result<(), UsageError> {
        let too_large = |len: usize| UsageError::HeadersTooLarge {
            len,
            max: u32::MAX as usize,
        };
        let count = u32::try_from(self.pairs.len()).map_err(|_| too_large(self.pairs.len()))?;
        dst.put_u32(count);
        for (name, value) in &self.pairs {
            for field in [name, value] {
                let len = u32::try_from(field.len()).map_err(|_| too_large(field.len()))?;
                dst.put_u32(len);
                dst.put_slice(field.as_bytes());
            }
        }
        Ok(())
    }

    /// Parses an uncompressed block, refusing more than `max_headers` pairs.
    pub fn decode_block(raw: &[u8], max_headers: usize) -> Result<Self, DecodeError> {
        let mut rest = raw;
        let count = take_u32(&mut rest)?;
        if count as usize > max_headers {
            return Err(DecodeError::TooManyHeaders {
                count,
                max: max_headers,
            });
        }
        let mut headers = Self {
            pairs: Vec::with_capacity(count as usize),
        };
        for _ in 0..count {
            let name = take_string(&mut rest, "header name")?;
            let value = take_string(&mut rest, "header value")?;
            headers.insert(name, value);
        }
        if !rest.is_empty() {
            return Err(DecodeError::MalformedHeaderBlock(
                "trailing bytes after the last pair",
            ));
        }
        Ok(headers)
    }
}

fn take_u32(rest: &mut &[u8]) -> Result<u32, DecodeError> {
    let (word, tail) = rest
        .split_first_chunk::<4>()
        .ok_or(DecodeError::MalformedHeaderBlock("length past the end"))?;
    *rest = tail;
    Ok(u32::from_be_bytes(*word))
}

fn take_string(rest: &mut &[u8], what: &'static str) -> Result<String, DecodeError> {
    let len = take_u32(rest)? as usize;
    if len > rest.len() {
        return Err(DecodeError::MalformedHeaderBlock("string past the end"));
    }
    let (bytes, tail) = rest.split_at(len);
    *rest = tail;
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8(what))
}

/// Limits applied while decompressing a header block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLimits {
    /// Largest decompressed block; beyond it the block is a zlib bomb.
    pub max_block: usize,
    /// Most name/value pairs in one block.
    pub max_headers: usize,
}

impl Default for HeaderLimits {
    fn default() -> Self {
        Self {
            max_block: 64 * 1024,
            max_headers: 128,
        }
    }
}

/// The sending direction's zlib stream.
pub struct HeaderCompressor {
    zlib: Compress,
    layout: Vec<u8>,
    out: Vec<u8>,
}

impl std::fmt::Debug for HeaderCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderCompressor")
            .field("total_in", &self.zlib.total_in())
            .finish_non_exhaustive()
    }
}

impl Default for HeaderCompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderCompressor {
    /// A fresh stream at level 9 seeded with the SPDY/3 dictionary, as Go's
    /// framer does (its first block starts `78 F9 E3 C6 A7 C2`).
    pub fn new() -> Self {
        let mut zlib = Compress::new(Compression::best(), true);
        // Setting a dictionary on a fresh stream cannot fail.
        let _adler = zlib.set_dictionary(SPDY3_DICTIONARY);
        Self {
            zlib,
            layout: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Appends `headers` as one compressed, sync-flushed block to `dst`.
    pub fn compress(&mut self, headers: &Headers, dst: &mut BytesMut) -> Result<(), UsageError> {
        self.layout.clear();
        headers.encode_block(&mut self.layout)?;
        self.out.clear();
        let mut input = self.layout.as_slice();
        // A sync flush needs room for the deflated data plus its empty stored
        // block; the loop grows the buffer until zlib stops filling it.
        loop {
            self.out.reserve(input.len() + 64);
            let before = self.zlib.total_in();
            self.zlib
                .compress_vec(input, &mut self.out, FlushCompress::Sync)
                .map_err(|e| UsageError::HeaderCompression(e.to_string()))?;
            let consumed = (self.zlib.total_in() - before) as usize;
            input = &input[consumed..];
            if input.is_empty() && self.out.len() < self.out.capacity() {
                break;
            }
        }
        dst.extend_from_slice(&self.out);
        Ok(())
    }
}

/// The receiving direction's zlib stream.
pub struct HeaderDecompressor {
    zlib: Decompress,
    limits: HeaderLimits,
    out: Vec<u8>,
}

impl std::fmt::Debug for HeaderDecompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderDecompressor")
            .field("limits", &self.limits)
            .field("total_in", &self.zlib.total_in())
            .finish_non_exhaustive()
    }
}

impl HeaderDecompressor {
    /// A fresh stream enforcing `limits`.
    pub fn new(limits: HeaderLimits) -> Self {
        Self {
            zlib: Decompress::new(true),
            limits,
            out: Vec::new(),
        }
    }

    /// Inflates one block (exactly the bytes a frame carried) and parses it.
    ///
    /// Any error leaves the stream unusable for later blocks, as with every
    /// zlib stream: the session must end.
    pub fn decompress(&mut self, block: &[u8]) -> Result<Headers, DecodeError> {
        if block.is_empty() {
            // Go peers always send a compressed block, but an empty one has
            // only one reading.
            return Ok(Headers::new());
        }
        let max = self.limits.max_block;
        self.out.clear();
        let mut input = block;
        // Each turn either consumes input, produces output or fails, and the
        // output is capped, so this bound is never reached by valid input.
        for _ in 0..(block.len() + max / 1024 + 16) {
            let room = (max + 1 - self.out.len()).min(16 * 1024);
            self.out.reserve_exact(room);
            let (in_before, out_before) = (self.zlib.total_in(), self.zlib.total_out());
            let result = self
                .zlib
                .decompress_vec(input, &mut self.out, FlushDecompress::Sync);
            let consumed = (self.zlib.total_in() - in_before) as usize;
            let produced = self.zlib.total_out() - out_before;
            input = &input[consumed..];
            if let Err(e) = result {
                match e.needs_dictionary() {
                    Some(SPDY3_DICTIONARY_ADLER32) => {
                        self.zlib
                            .set_dictionary(SPDY3_DICTIONARY)
                            .map_err(|e| DecodeError::Compression(e.to_string()))?;
                        continue;
                    }
                    Some(other) => {
                        return Err(DecodeError::Compression(format!(
                            "unknown preset dictionary {other:#010x}"
                        )))
                    }
                    None => return Err(DecodeError::Compression(e.to_string())),
                }
            }
            if self.out.len() > max {
                return Err(DecodeError::HeaderBlockTooLarge { max });
            }
            if input.is_empty() && self.out.len() < self.out.capacity() {
                let headers = Headers::decode_block(&self.out, self.limits.max_headers);
                self.release_scratch();
                return headers;
            }
            if consumed == 0 && produced == 0 && !input.is_empty() {
                // The zlib stream ended (final block) and bytes remain.
                return Err(DecodeError::Compression(
                    "data after the end of the zlib stream".into(),
                ));
            }
            if consumed == 0 && produced == 0 {
                break;
            }
        }
        Err(DecodeError::Compression(
            "header block did not finish".into(),
        ))
    }

    /// Drops a large scratch buffer so that one big block does not pin memory.
    fn release_scratch(&mut self) {
        if self.out.capacity() > 64 * 1024 {
            self.out = Vec::new();
        }
    }
}
