//! Error-channel bytes → exit status for every protocol version, and the
//! server encoders' exact bytes (PROTOCOLS.md §3.6).

use podlink_proto::channel::Protocol;
use podlink_proto::status::{ExitStatus, Status};
use podlink_proto::DecodeError;

const SUCCESS: &str = r#"{"metadata":{},"status":"Success"}"#;

fn exit_json(code: &str) -> String {
    format!(
        r#"{{"metadata":{{}},"status":"Failure","message":"command terminated with non-zero exit code: exit status {code}","reason":"NonZeroExitCode","details":{{"causes":[{{"reason":"ExitCode","message":"{code}"}}]}}}}"#
    )
}

const JSON_PROTOCOLS: [Protocol; 3] = [Protocol::V4, Protocol::V4Base64, Protocol::V5];
const TEXT_PROTOCOLS: [Protocol; 4] =
    [Protocol::V1, Protocol::V1Base64, Protocol::V2, Protocol::V3];

#[test]
fn success_json_is_success() {
    for p in JSON_PROTOCOLS {
        assert_eq!(
            ExitStatus::decode(p, SUCCESS.as_bytes()),
            Ok(ExitStatus::Success)
        );
    }
}

#[test]
fn nothing_is_success_before_v4_and_missing_from_v4() {
    for p in TEXT_PROTOCOLS {
        assert_eq!(ExitStatus::decode(p, b""), Ok(ExitStatus::Success), "{p}");
    }
    for p in JSON_PROTOCOLS {
        assert_eq!(ExitStatus::decode(p, b""), Ok(ExitStatus::Missing), "{p}");
    }
}

#[test]
fn non_zero_exit_codes_including_above_255() {
    for code in [1u32, 3, 42, 255, 256, 3_221_225_477] {
        let json = exit_json(&code.to_string());
        let status = ExitStatus::decode(Protocol::V5, json.as_bytes());
        assert_eq!(status, Ok(ExitStatus::Exited { code }));
        assert_eq!(status.ok().and_then(|s| s.code()), Some(code));
    }
    assert_eq!(ExitStatus::Success.code(), Some(0));
    assert_eq!(ExitStatus::Missing.code(), None);
}

#[test]
fn non_zero_exit_without_a_usable_code_keeps_the_message() {
    let no_details =
        r#"{"metadata":{},"status":"Failure","message":"boom","reason":"NonZeroExitCode"}"#;
    assert_eq!(
        ExitStatus::decode(Protocol::V4, no_details.as_bytes()),
        Ok(ExitStatus::ExitedWithoutCode {
            message: "boom".into()
        })
    );
    for bad in ["x", "-1", "", "0", "99999999999"] {
        let json = exit_json(bad);
        assert!(
            matches!(
                ExitStatus::decode(Protocol::V4, json.as_bytes()),
                Ok(ExitStatus::ExitedWithoutCode { ref message }) if message.contains("non-zero exit code")
            ),
            "code {bad:?}"
        );
    }
}

#[test]
fn other_failures_keep_the_server_message_reason_and_code() {
    let json = r#"{"metadata":{},"status":"Failure","message":"Internal error occurred: no such container","reason":"InternalError","code":500}"#;
    assert_eq!(
        ExitStatus::decode(Protocol::V5, json.as_bytes()),
        Ok(ExitStatus::Failed {
            message: "Internal error occurred: no such container".into(),
            reason: Some("InternalError".into()),
            code: Some(500),
        })
    );
}

#[test]
fn captured_status_with_spaces_decodes() {
    let json = br#"{"metadata": {}, "status": "Success"}"#;
    assert_eq!(
        ExitStatus::decode(Protocol::V4, json),
        Ok(ExitStatus::Success)
    );
}

#[test]
fn unknown_status_value_is_a_failure_not_success() {
    let json = br#"{"metadata":{},"status":"Pending","message":"hm"}"#;
    assert!(matches!(
        ExitStatus::decode(Protocol::V4, json),
        Ok(ExitStatus::Failed { message, .. }) if message.contains("hm")
    ));
}

#[test]
fn invalid_json_is_a_decode_error() {
    assert!(matches!(
        ExitStatus::decode(Protocol::V5, b"{\"status\":"),
        Err(DecodeError::Json { .. })
    ));
}

#[test]
fn text_forms_parse_exit_codes_when_present() {
    let text = b"command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7";
    for p in TEXT_PROTOCOLS {
        assert_eq!(
            ExitStatus::decode(p, text),
            Ok(ExitStatus::Exited { code: 7 })
        );
    }
    assert_eq!(
        ExitStatus::decode(
            Protocol::V2,
            b"command terminated with non-zero exit code: exit status 300"
        ),
        Ok(ExitStatus::Exited { code: 300 })
    );
    assert_eq!(
        ExitStatus::decode(
            Protocol::V1,
            b"command terminated with non-zero exit code: killed"
        ),
        Ok(ExitStatus::ExitedWithoutCode {
            message: "command terminated with non-zero exit code: killed".into()
        })
    );
    assert_eq!(
        ExitStatus::decode(Protocol::V3, b"container not found"),
        Ok(ExitStatus::Failed {
            message: "container not found".into(),
            reason: None,
            code: None
        })
    );
}

#[test]
fn server_encoders_write_kubelet_bytes() {
    let mut out = Vec::new();
    ExitStatus::Success.encode(Protocol::V5, &mut out);
    assert_eq!(out, SUCCESS.as_bytes());

    out.clear();
    ExitStatus::Exited { code: 42 }.encode(Protocol::V4, &mut out);
    assert_eq!(
        String::from_utf8(out.clone()).expect("utf8"),
        exit_json("42")
    );

    out.clear();
    ExitStatus::Failed {
        message: "Internal error occurred: x".into(),
        reason: Some("InternalError".into()),
        code: Some(500),
    }
    .encode(Protocol::V5, &mut out);
    assert_eq!(
        out,
        br#"{"metadata":{},"status":"Failure","message":"Internal error occurred: x","reason":"InternalError","code":500}"#
    );
}

#[test]
fn server_encoders_before_v4_write_text_on_failure_only() {
    for p in TEXT_PROTOCOLS {
        let mut out = Vec::new();
        ExitStatus::Success.encode(p, &mut out);
        assert!(out.is_empty());
        ExitStatus::Exited { code: 3 }.encode(p, &mut out);
        assert_eq!(
            out,
            b"command terminated with non-zero exit code: exit status 3"
        );
        assert_eq!(
            ExitStatus::decode(p, &out),
            Ok(ExitStatus::Exited { code: 3 })
        );
    }
}

#[test]
fn encode_then_decode_is_identity_for_every_protocol() {
    let cases = [
        ExitStatus::Success,
        ExitStatus::Exited { code: 1 },
        ExitStatus::Exited { code: 70_000 },
        ExitStatus::Failed {
            message: "x".into(),
            reason: Some("InternalError".into()),
            code: Some(500),
        },
    ];
    for p in JSON_PROTOCOLS {
        for case in &cases {
            let mut out = Vec::new();
            case.encode(p, &mut out);
            assert_eq!(ExitStatus::decode(p, &out).as_ref(), Ok(case), "{p}");
        }
    }
}

#[test]
fn expired_status_follows_client_go() {
    let expired = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 123 (456)","reason":"Expired","code":410}"#;
    assert!(Status::from_json(expired).expect("status").is_expired());
    let gone = Status::failure("gone", "Gone", 410);
    assert!(gone.is_expired());
    let bare_410 = Status {
        code: Some(410),
        ..Status::default()
    };
    assert!(bare_410.is_expired());
    assert!(!Status::failure("nope", "NotFound", 404).is_expired());
}
