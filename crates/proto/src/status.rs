//! The remotecommand error channel: bytes → [`ExitStatus`], and the
//! server-side encoders that write what a kubelet or apiserver writes
//! (PROTOCOLS.md §3.6).
//!
//! From v4 on the channel carries one `metav1.Status` JSON; before that it
//! carries the Status `message` as plain text, and nothing on success.

use serde::{Deserialize, Serialize};

use crate::channel::Protocol;
use crate::error::DecodeError;

/// `Status.status` of a successful operation.
pub const STATUS_SUCCESS: &str = "Success";
/// `Status.status` of a failed operation.
pub const STATUS_FAILURE: &str = "Failure";
/// `Status.reason` of a process that exited non-zero.
pub const REASON_NON_ZERO_EXIT_CODE: &str = "NonZeroExitCode";
/// `StatusCause.reason` (Go `Type`) of the cause that holds the exit code.
pub const CAUSE_EXIT_CODE: &str = "ExitCode";
/// Prefix of the message of a non-zero exit, from the kubelet.
pub const NON_ZERO_EXIT_PREFIX: &str = "command terminated with non-zero exit code";

/// A `metav1.Status`, with the fields this project reads and writes. Field
/// order matches Go's, so serialization gives the kubelet's bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `Status` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `v1` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// List metadata; always `{}` on the error channel.
    #[serde(default)]
    pub metadata: StatusMetadata,
    /// `Success` or `Failure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Machine-readable reason (`NotFound`, `Expired`, `NonZeroExitCode` …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Extra data about the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    /// Suggested HTTP code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
}

/// `metav1.ListMeta` as it appears in a Status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusMetadata {
    /// Resource version, rarely set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

/// `metav1.StatusDetails`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    /// Name of the resource concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// API group of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind (resource name) of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// UID of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Individual causes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    /// Seconds to wait before retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<i32>,
}

/// `metav1.StatusCause`; Go's `Type` field is serialized as `reason`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCause {
    /// The cause type (`ExitCode` for exits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its message (the decimal exit code for `ExitCode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The field concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Status {
    /// `{"metadata":{},"status":"Success"}`.
    pub fn success() -> Self {
        Self {
            status: Some(STATUS_SUCCESS.into()),
            ..Self::default()
        }
    }

    /// A failure with a message, reason and HTTP code.
    pub fn failure(message: impl Into<String>, reason: impl Into<String>, code: i32) -> Self {
        Self {
            status: Some(STATUS_FAILURE.into()),
            message: Some(message.into()),
            reason: Some(reason.into()),
            code: Some(code),
            ..Self::default()
        }
    }

    /// Parses a Status JSON document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(|e| DecodeError::json("Status", &e))
    }

    /// Serializes compactly, in Go's field order.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and integers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether `status` is `Success`.
    pub fn is_success(&self) -> bool {
        self.status.as_deref() == Some(STATUS_SUCCESS)
    }

    /// Whether client-go counts this as "expired": reason `Expired` or
    /// `Gone`, or code 410 with no known reason.
    pub fn is_expired(&self) -> bool {
        match self.reason.as_deref() {
            Some("Expired" | "Gone") => true,
            None | Some("") => self.code == Some(410),
            Some(_) => false,
        }
    }
}

/// How a remote command ended, as told by its error channel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// The command succeeded (exit code 0).
    Success,
    /// The command exited with this non-zero code. Codes above 255 (from
    /// Windows nodes, for instance) are kept.
    Exited {
        /// The exit code, never 0.
        code: u32,
    },
    /// The server says the command exited non-zero but gave no usable code.
    ExitedWithoutCode {
        /// The server's message.
        message: String,
    },
    /// The command could not run or the server failed.
    Failed {
        /// The server's message, intact.
        message: String,
        /// `Status.reason`, if the server gave one.
        reason: Option<String>,
        /// `Status.code`, if the server gave one.
        code: Option<i32>,
    },
    /// A v4/v5 stream ended without any status. kubectl treats this as
    /// success; a careful client reports it as unknown.
    Missing,
}

impl ExitStatus {
    /// Decodes everything the error channel carried until its end.
    pub fn decode(protocol: Protocol, bytes: &[u8]) -> Result<Self, DecodeError> {
        if protocol.has_json_status() {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Self::Missing);
            }
            Ok(Self::from_status(Status::from_json(bytes)?))
        } else if bytes.is_empty() {
            Ok(Self::Success)
        } else {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| DecodeError::InvalidUtf8("error channel text"))?;
            Ok(Self::from_text(text))
        }
    }

    /// Interprets a v4/v5 Status as client-go's `errorDecoderV4` does, but
    /// keeping exit codes above 255 and never losing the message.
    pub fn from_status(status: Status) -> Self {
        let message = status.message.clone().unwrap_or_default();
        match status.status.as_deref() {
            Some(STATUS_SUCCESS) => Self::Success,
            Some(STATUS_FAILURE) if status.reason.as_deref() == Some(REASON_NON_ZERO_EXIT_CODE) => {
                let code = status
                    .details
                    .iter()
                    .flat_map(|d| &d.causes)
                    .find(|c| c.reason.as_deref() == Some(CAUSE_EXIT_CODE))
                    .and_then(|c| c.message.as_deref())
                    .and_then(|m| m.trim().parse::<u32>().ok())
                    .filter(|&c| c != 0);
                match code {
                    Some(code) => Self::Exited { code },
                    None => Self::ExitedWithoutCode { message },
                }
            }
            Some(STATUS_FAILURE) => Self::Failed {
                message,
                reason: status.reason,
                code: status.code,
            },
            other => Self::Failed {
                message: format!("unknown status {:?}: {message}", other.unwrap_or_default()),
                reason: status.reason,
                code: status.code,
            },
        }
    }

    /// Interprets v1–v3 text. A non-zero exit's code is taken from a
    /// trailing `exit code N` or `exit status N`, when there is one.
    pub fn from_text(text: &str) -> Self {
        let message = text.to_owned();
        if !text.starts_with(NON_ZERO_EXIT_PREFIX) {
            return Self::Failed {
                message,
                reason: None,
                code: None,
            };
        }
        let code = ["exit code ", "exit status "]
            .iter()
            .filter_map(|marker| text.rfind(marker).map(|i| &text[i + marker.len()..]))
            .find_map(|tail| tail.trim().parse::<u32>().ok())
            .filter(|&c| c != 0);
        match code {
            Some(code) => Self::Exited { code },
            None => Self::ExitedWithoutCode { message },
        }
    }

    /// The exit code when it is known: 0 for success, the code for a
    /// non-zero exit; `None` when the server gave none or failed.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Success => Some(0),
            Self::Exited { code } => Some(*code),
            Self::ExitedWithoutCode { .. } | Self::Failed { .. } | Self::Missing => None,
        }
    }

    /// Whether the command is known to have succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success)
    }

    /// The Status a kubelet sends for this outcome.
    pub fn to_status(&self) -> Status {
        match self {
            Self::Success | Self::Missing => Status::success(),
            Self::Exited { code } => Status {
                status: Some(STATUS_FAILURE.into()),
                message: Some(format!("{NON_ZERO_EXIT_PREFIX}: exit status {code}")),
                reason: Some(REASON_NON_ZERO_EXIT_CODE.into()),
                details: Some(StatusDetails {
                    causes: vec![StatusCause {
                        reason: Some(CAUSE_EXIT_CODE.into()),
                        message: Some(code.to_string()),
                        field: None,
                    }],
                    ..StatusDetails::default()
                }),
                ..Status::default()
            },
            Self::ExitedWithoutCode { message } => Status {
                status: Some(STATUS_FAILURE.into()),
                message: Some(message.clone()),
                reason: Some(REASON_NON_ZERO_EXIT_CODE.into()),
                ..Status::default()
            },
            Self::Failed {
                message,
                reason,
                code,
            } => Status {
                status: Some(STATUS_FAILURE.into()),
                message: Some(message.clone()),
                reason: reason.clone(),
                code: *code,
                ..Status::default()
            },
        }
    }

    /// Appends what a server writes on the error channel for this outcome:
    /// Status JSON from v4 on; before v4 the message text on failure and
    /// nothing on success. [`ExitStatus::Missing`] writes nothing.
    pub fn encode(&self, protocol: Protocol, dst: &mut Vec<u8>) {
        if matches!(self, Self::Missing) {
            return;
        }
        let status = self.to_status();
        if protocol.has_json_status() {
            dst.extend_from_slice(&status.to_json());
        } else if !status.is_success() {
            dst.extend_from_slice(status.message.unwrap_or_default().as_bytes());
        }
    }
}
