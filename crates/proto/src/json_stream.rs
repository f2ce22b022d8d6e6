//! Splits a byte stream of concatenated JSON objects into one slice per
//! object, for watch events and resize messages.
//!
//! Each byte is scanned once, with the nesting depth and string/escape
//! state carried across chunks, so input may be split anywhere; only the
//! complete slice of an object is then handed to serde. Bytes between
//! objects may be JSON whitespace only.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::error::DecodeError;

#[derive(Debug)]
pub(crate) struct JsonSplitter {
    what: &'static str,
    max_value: usize,
    /// Unconsumed bytes; `buf[0]` is at stream offset `base`.
    buf: BytesMut,
    base: u64,
    /// Stream offset of the next byte to scan.
    scanned: u64,
    /// Stream offset where the current object began, if inside one.
    start: Option<u64>,
    depth: u32,
    in_string: bool,
    escape: bool,
    /// Complete objects as stream offset ranges, oldest first.
    ready: VecDeque<(u64, u64)>,
    error: Option<DecodeError>,
    /// The error was handed out; the stream is over.
    done: bool,
}

impl JsonSplitter {
    pub(crate) fn new(what: &'static str, max_value: usize) -> Self {
        Self {
            what,
            max_value,
            buf: BytesMut::new(),
            base: 0,
            scanned: 0,
            start: None,
            depth: 0,
            in_string: false,
            escape: false,
            ready: VecDeque::new(),
            error: None,
            done: false,
        }
    }

    pub(crate) fn handle_input(&mut self, data: &[u8]) {
        if self.error.is_some() || self.done {
            return;
        }
        self.buf.extend_from_slice(data);
        self.scan();
    }

    fn scan(&mut self) {
        let from = (self.scanned - self.base) as usize;
        let mut i = from;
        let bytes = &self.buf[..];
        while i < bytes.len() {
            let b = bytes[i];
            let offset = self.base + i as u64;
            match self.start {
                None => match b {
                    b' ' | b'\t' | b'\r' | b'\n' => {}
                    b'{' => {
                        self.start = Some(offset);
                        self.depth = 1;
                    }
                    byte => {
                        self.error = Some(DecodeError::UnexpectedByte {
                            what: self.what,
                            byte,
                            offset,
                        });
                        break;
                    }
                },
                Some(start) => {
                    if self.escape {
                        self.escape = false;
                    } else if self.in_string {
                        // Skip plain string bytes in one go.
                        let run = bytes[i..]
                            .iter()
                            .position(|&c| c == b'"' || c == b'\\')
                            .unwrap_or(bytes.len() - i);
                        i += run;
                        match bytes.get(i) {
                            None => break,
                            Some(b'\\') => self.escape = true,
                            Some(_) => self.in_string = false,
                        }
                    } else {
                        match b {
                            b'"' => self.in_string = true,
                            b'{' | b'[' => self.depth += 1,
                            b'}' | b']' => {
                                self.depth -= 1;
                                if self.depth == 0 {
                                    self.start = None;
                                    if (offset + 1 - start) as usize > self.max_value {
                                        self.error = Some(self.too_large());
                                        break;
                                    }
                                    self.ready.push_back((start, offset + 1));
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            i += 1;
        }
        self.scanned = self.base + i.min(self.buf.len()) as u64;
        if let Some(start) = self.start {
            if self.error.is_none() && (self.scanned - start) as usize > self.max_value {
                self.error = Some(self.too_large());
            }
        }
        if self.error.is_some() {
            // Keep only the complete objects; the rest can never be used.
            let keep = self
                .ready
                .back()
                .map_or(0, |&(_, end)| (end - self.base) as usize);
            self.buf.truncate(keep);
        } else if self.start.is_none() && self.ready.is_empty() {
            // Only whitespace is buffered: drop it.
            self.base += self.buf.len() as u64;
            self.buf.clear();
        }
    }

    fn too_large(&self) -> DecodeError {
        DecodeError::ValueTooLarge {
            what: self.what,
            max: self.max_value,
        }
    }

    /// The next complete object, then any framing error once.
    pub(crate) fn next_value(&mut self) -> Option<Result<Bytes, DecodeError>> {
        if let Some((start, end)) = self.ready.pop_front() {
            let chunk = self.buf.split_to((end - self.base) as usize).freeze();
            let value = chunk.slice((start - self.base) as usize..);
            self.base = end;
            return Some(Ok(value));
        }
        if self.done {
            return None;
        }
        let err = self.error.take()?;
        self.done = true;
        Some(Err(err))
    }

    /// Ends the stream: an object left incomplete is an error.
    pub(crate) fn finish(&mut self) -> Result<(), DecodeError> {
        match self.start {
            Some(start) if self.error.is_none() && !self.done => {
                self.done = true;
                Err(DecodeError::Truncated {
                    what: self.what,
                    len: (self.scanned - start) as usize,
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(chunks: &[&[u8]]) -> Vec<Result<Bytes, DecodeError>> {
        let mut s = JsonSplitter::new("test", 64);
        let mut out = Vec::new();
        for c in chunks {
            s.handle_input(c);
            out.extend(std::iter::from_fn(|| s.next_value()));
        }
        out
    }

    #[test]
    fn an_escaped_quote_split_after_the_backslash_stays_in_the_string() {
        let got = values(&[br#"{"a":"x\"#, br#"""}"#, br#" {"b":"\\"}"#]);
        assert_eq!(
            got,
            [
                Ok(Bytes::from_static(br#"{"a":"x\""}"#)),
                Ok(Bytes::from_static(br#"{"b":"\\"}"#)),
            ]
        );
    }

    #[test]
    fn braces_inside_strings_do_not_count() {
        let got = values(&[br#"{"a":"}}{{"}"#]);
        assert_eq!(got, [Ok(Bytes::from_static(br#"{"a":"}}{{"}"#))]);
    }

    #[test]
    fn whitespace_only_input_is_not_buffered() {
        let mut s = JsonSplitter::new("test", 64);
        for _ in 0..1000 {
            s.handle_input(b"\n \r\t");
        }
        assert!(s.buf.is_empty());
        assert_eq!(s.finish(), Ok(()));
    }
}
