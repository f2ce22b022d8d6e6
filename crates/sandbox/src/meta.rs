//! Object metadata helpers: names, timestamps, identifiers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;

use crate::error::Cause;

/// Longest DNS-1123 label.
const LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain.
const SUBDOMAIN_MAX: usize = 253;

/// Which name syntax a resource requires.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NameRule {
    /// RFC 1123 subdomain (pods, deployments).
    Subdomain,
    /// RFC 1123 label (namespaces).
    Label,
    /// RFC 1035 label (services: must start with a letter).
    Label1035,
}

fn is_label(s: &str, first_alpha: bool) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= LABEL_MAX
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
        && (!first_alpha || bytes[0].is_ascii_lowercase())
}

/// Checks an object name, returning the cause a real apiserver reports.
pub(crate) fn check_name(name: &str, rule: NameRule) -> Option<Cause> {
    let (ok, what, example) = match rule {
        NameRule::Subdomain => (
            name.len() <= SUBDOMAIN_MAX && name.split('.').all(|l| is_label(l, false)),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            "example.com",
        ),
        NameRule::Label => (
            is_label(name, false),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            "my-name",
        ),
        NameRule::Label1035 => (
            is_label(name, true),
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            "my-name",
        ),
    };
    (!ok).then(|| Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {name:?}: {what} (e.g. '{example}')"),
        field: "metadata.name".to_owned(),
    })
}

/// Checks a label key and value.
pub(crate) fn check_label(key: &str, value: &str) -> Option<String> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let valid_part = |s: &str, allow_empty: bool| {
        (allow_empty && s.is_empty())
            || (s.len() <= LABEL_MAX
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric()))
    };
    if !valid_part(name, false) || key.len() > SUBDOMAIN_MAX + 1 + LABEL_MAX {
        return Some(format!("invalid label key {key:?}"));
    }
    if !valid_part(value, true) {
        return Some(format!("invalid label value {value:?} for key {key:?}"));
    }
    None
}

/// A random lowercase alphanumeric suffix (generateName, pod names).
pub(crate) fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A random RFC 4122 version-4 UID.
pub(crate) fn new_uid() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// RFC 3339 UTC timestamp of `secs` since the epoch (`2025-01-01T00:00:00Z`).
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil-from-days (proleptic Gregorian), after H. Hinnant.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The current time as RFC 3339.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(now_unix())
}

/// Parses an RFC 3339 UTC timestamp written by [`rfc3339`] (or any
/// `YYYY-MM-DDTHH:MM:SS[.fff]Z`) back to epoch seconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days-from-civil, after H. Hinnant.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// kubectl's short human duration (`5s`, `3m20s`, `2d4h`), as the apiserver
/// writes into Table `Age` cells (apimachinery `duration.HumanDuration`).
pub(crate) fn human_duration(secs: u64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        match secs % 60 {
            0 => format!("{m}m"),
            s => format!("{m}m{s}s"),
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        match m % 60 {
            0 => format!("{h}h"),
            mm => format!("{h}h{mm}m"),
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        match h % 24 {
            0 => format!("{d}d"),
            hh => format!("{d}d{hh}h"),
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        match d % 365 {
            0 => format!("{}y", d / 365),
            dd => format!("{}y{dd}d", d / 365),
        }
    } else {
        format!("{}y", d / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for secs in [0, 951_782_400, 1_735_689_600, 4_102_444_800 + 12_345] {
            assert_eq!(
                parse_rfc3339(&rfc3339(secs)),
                Some(secs),
                "{}",
                rfc3339(secs)
            );
        }
        assert_eq!(rfc3339(1_735_689_600), "2025-01-01T00:00:00Z");
    }

    #[test]
    fn names_follow_dns_rules() {
        assert!(check_name("demo-1", NameRule::Subdomain).is_none());
        assert!(check_name("a.b", NameRule::Subdomain).is_none());
        assert!(check_name("Bad", NameRule::Subdomain).is_some());
        assert!(check_name("-x", NameRule::Label).is_some());
        assert!(check_name("1abc", NameRule::Label1035).is_some());
        assert!(check_name(&"a".repeat(64), NameRule::Label).is_some());
    }

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(50 * 3600), "2d2h");
    }
}
