//! URL query strings.

use percent_encoding::percent_decode_str;

/// Longest query string accepted, in bytes.
pub(crate) const MAX_QUERY: usize = 64 * 1024;

/// A decoded query string, in order, repeated keys kept.
#[derive(Debug, Default, Clone)]
pub(crate) struct Query(Vec<(String, String)>);

fn decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_decode_str(&plus).decode_utf8_lossy().into_owned()
}

impl Query {
    /// Parses `a=1&b=2` (form encoding: `+` is a space). The router has
    /// already rejected queries longer than [`MAX_QUERY`].
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let q = query.unwrap_or("");
        Self(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean flag the apiserver way: false only if absent, `0` or
    /// `false` (any case).
    pub(crate) fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"))
    }

    /// An unsigned number, or a 400 naming the parameter.
    pub(crate) fn number(&self, key: &str) -> Result<Option<u64>, crate::error::ApiError> {
        self.get(key)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    crate::error::ApiError::BadRequest(format!("invalid value for {key}: {v:?}"))
                })
            })
            .transpose()
    }
}
