//! Terminal resize payloads: `{"Width":W,"Height":H}` plus a newline, read
//! as a stream of JSON objects (PROTOCOLS.md §3.5).

use std::io::Write;

use serde_json::{Map, Value};

use crate::error::DecodeError;
use crate::json_stream::JsonSplitter;

/// Largest single resize object accepted; real ones are ~30 bytes.
const MAX_RESIZE_OBJECT: usize = 4096;

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TerminalSize {
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
}

impl TerminalSize {
    /// Appends `{"Width":W,"Height":H}\n`, as kubectl sends it.
    pub fn encode(self, dst: &mut Vec<u8>) {
        // Writing to a Vec cannot fail.
        let _ = writeln!(
            dst,
            r#"{{"Width":{},"Height":{}}}"#,
            self.width, self.height
        );
    }

    /// Parses one resize object. Keys match case-insensitively as Go's
    /// decoder does; a missing key reads as 0.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        let object: Map<String, Value> =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::json("resize", &e))?;
        let field = |name: &str| -> Result<u16, DecodeError> {
            // Go keeps the last matching key; with several spellings of the
            // name (rare), the map's order decides.
            match object.iter().rfind(|(k, _)| k.eq_ignore_ascii_case(name)) {
                None | Some((_, Value::Null)) => Ok(0),
                Some((_, value)) => value
                    .as_u64()
                    .and_then(|v| u16::try_from(v).ok())
                    .ok_or_else(|| DecodeError::Json {
                        what: "resize",
                        message: format!("{name} is not a 16-bit unsigned integer: {value}"),
                    }),
            }
        };
        Ok(Self {
            width: field("width")?,
            height: field("height")?,
        })
    }
}

/// Incremental decoder of the resize channel or stream: any chunking, any
/// number of objects per chunk.
///
/// Call [`handle_input`](Self::handle_input) with each payload, then
/// [`poll_size`](Self::poll_size) until `None`. A framing error (a byte
/// that cannot start an object, an oversized object) ends the stream after
/// it is reported; a well-framed object with bad fields is reported and
/// skipped.
#[derive(Debug)]
pub struct ResizeDecoder {
    splitter: JsonSplitter,
}

impl Default for ResizeDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ResizeDecoder {
    /// A decoder at the start of the stream.
    pub fn new() -> Self {
        Self {
            splitter: JsonSplitter::new("resize stream", MAX_RESIZE_OBJECT),
        }
    }

    /// Feeds payload bytes.
    pub fn handle_input(&mut self, data: &[u8]) {
        self.splitter.handle_input(data);
    }

    /// The next size, or the next error.
    pub fn poll_size(&mut self) -> Option<Result<TerminalSize, DecodeError>> {
        self.splitter
            .next_value()
            .map(|value| value.and_then(|v| TerminalSize::from_json(&v)))
    }
}
