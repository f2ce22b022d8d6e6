//! Accept-header negotiation: Table vs plain JSON, aggregated vs legacy
//! discovery.

/// One media range from an Accept header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MediaType {
    pub(crate) essence: String,
    params: Vec<(String, String)>,
}

impl MediaType {
    /// A parameter (`as`, `g`, `v`).
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn is_json(&self) -> bool {
        matches!(
            self.essence.as_str(),
            "application/json" | "application/*" | "*/*"
        )
    }
}

/// Parses an Accept header into its media ranges, in order.
pub(crate) fn parse_accept(header: Option<&str>) -> Vec<MediaType> {
    header
        .unwrap_or("")
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let essence = parts.next()?.to_ascii_lowercase();
            if essence.is_empty() {
                return None;
            }
            let params = parts
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((
                        k.trim().to_ascii_lowercase(),
                        v.trim().trim_matches('"').to_owned(),
                    ))
                })
                .collect();
            Some(MediaType { essence, params })
        })
        .collect()
}

/// What a read of objects should produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Representation {
    /// Plain objects/lists.
    Json,
    /// `meta.k8s.io` Table of the given version (`v1` or `v1beta1`).
    Table(&'static str),
}

/// Picks the representation for object reads; `None` if nothing acceptable.
pub(crate) fn negotiate_object(accept: Option<&str>) -> Option<Representation> {
    let types = parse_accept(accept);
    if types.is_empty() {
        return Some(Representation::Json);
    }
    for t in &types {
        if t.essence == "application/json"
            && t.param("as") == Some("Table")
            && t.param("g") == Some("meta.k8s.io")
        {
            match t.param("v") {
                Some("v1") => return Some(Representation::Table("v1")),
                Some("v1beta1") => return Some(Representation::Table("v1beta1")),
                _ => continue,
            }
        }
        if t.param("as").is_none()
            && (t.is_json() || t.essence == "application/vnd.kubernetes.protobuf")
        {
            return Some(Representation::Json);
        }
    }
    None
}

/// Aggregated discovery version asked for, if any (`v2` or `v2beta1`).
pub(crate) fn negotiate_discovery(accept: Option<&str>) -> Option<&'static str> {
    for t in parse_accept(accept) {
        if t.essence == "application/json"
            && t.param("as") == Some("APIGroupDiscoveryList")
            && t.param("g") == Some("apidiscovery.k8s.io")
        {
            match t.param("v") {
                Some("v2") => return Some("v2"),
                Some("v2beta1") => return Some("v2beta1"),
                _ => continue,
            }
        }
        if t.param("as").is_none() && t.is_json() {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_accept_headers_negotiate() {
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate_object(Some(table)),
            Some(Representation::Table("v1"))
        );
        assert_eq!(
            negotiate_object(Some("application/json, */*")),
            Some(Representation::Json)
        );
        assert_eq!(
            negotiate_object(Some("application/vnd.kubernetes.protobuf,application/json")),
            Some(Representation::Json)
        );
        assert_eq!(negotiate_object(Some("text/html")), None);
        let disc = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate_discovery(Some(disc)), Some("v2"));
        let old = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate_discovery(Some(old)), Some("v2beta1"));
        assert_eq!(negotiate_discovery(Some("application/json, */*")), None);
    }
}
