//! Corrupt files, one per rule of the format, each refused with its typed
//! error and a message naming the value and the rule; never a panic.

use dlpack_safetensors::{Error, Header, SafetensorsFile};

/// A file: the header length, `json`, then `data`.
fn file(json: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(data);
    out
}

fn refused(bytes: &[u8]) -> Error {
    match Header::parse(bytes) {
        Ok(h) => panic!("accepted: {h:?}"),
        Err(err) => err,
    }
}

const F32_2: &str = r#""dtype":"F32","shape":[2],"data_offsets":[0,8]"#;

/// (file, check of the error, words its message must hold).
type Case = (Vec<u8>, fn(&Error) -> bool, &'static str);

fn cases() -> Vec<Case> {
    let long = format!("{{\"w\":{{{F32_2}}}}}");
    let mut out_of_range = file(&long, &[0; 8]);
    out_of_range.truncate(20);
    let mut not_utf8 = file("{\"\u{e9}\":1}", &[]);
    not_utf8[10] = 0xff;
    vec![
        (
            b"abc".to_vec(),
            |e| matches!(e, Error::HeaderTooSmall { len: 3 }),
            "8 bytes",
        ),
        (
            100_000_001u64.to_le_bytes().to_vec(),
            |e| {
                matches!(
                    e,
                    Error::HeaderTooLarge {
                        header_len: 100_000_001
                    }
                )
            },
            "limit",
        ),
        (
            out_of_range,
            |e| matches!(e, Error::HeaderOutOfRange { len: 20, .. }),
            "past the end",
        ),
        (
            u64::MAX.to_le_bytes().to_vec(),
            |e| matches!(e, Error::HeaderTooLarge { .. }),
            "limit",
        ),
        (
            not_utf8,
            |e| matches!(e, Error::HeaderNotUtf8 { .. }),
            "UTF-8",
        ),
        (
            file("{\"w\":", &[]),
            |e| matches!(e, Error::Json { .. }),
            "JSON",
        ),
        (
            file("[]", &[]),
            |e| matches!(e, Error::Json { offset: 0, .. }),
            "'{'",
        ),
        (
            file("", &[]),
            |e| matches!(e, Error::Json { offset: 0, .. }),
            "JSON",
        ),
        (
            file("{} x", &[]),
            |e| matches!(e, Error::Json { offset: 3, .. }),
            "end of the header",
        ),
        (
            file(
                r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},}"#,
                &[],
            ),
            |e| matches!(e, Error::Json { .. }),
            "name of an entry",
        ),
        (
            file("{\"a\\q\":{}}", &[]),
            |e| matches!(e, Error::Json { .. }),
            "escape",
        ),
        (
            file("{\"a\u{1}\":{}}", &[]),
            |e| matches!(e, Error::Json { .. }),
            "control",
        ),
        (
            file("{\"\\ud800\":{}}", &[]),
            |e| matches!(e, Error::Json { .. }),
            "surrogate",
        ),
        (
            file("{\"w\":3}", &[]),
            |e| matches!(e, Error::Json { .. }),
            "object",
        ),
        (
            file(r#"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, &[0; 8]),
            |e| matches!(e, Error::Field { field, rule: "is missing", .. } if field == "dtype"),
            "\"dtype\" is missing",
        ),
        (
            file(
                r#"{"w":{"dtype":5,"shape":[2],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
            |e| matches!(e, Error::Field { field, .. } if field == "dtype"),
            "must be a string",
        ),
        (
            file(
                r#"{"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
            |e| {
                matches!(
                    e,
                    Error::Field {
                        rule: "is given twice",
                        ..
                    }
                )
            },
            "twice",
        ),
        (
            file(
                r#"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
            |e| matches!(e, Error::Field { field, .. } if field == "shape"),
            "non-negative integers",
        ),
        (
            file(
                r#"{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
            |e| matches!(e, Error::Field { field, .. } if field == "shape"),
            "non-negative integers",
        ),
        (
            file(
                r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}}"#,
                &[0; 8],
            ),
            |e| matches!(e, Error::Field { field, .. } if field == "data_offsets"),
            "two non-negative integers",
        ),
        (
            file(
                r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999]}}"#,
                &[],
            ),
            |e| matches!(e, Error::Field { field, .. } if field == "data_offsets"),
            "two non-negative integers",
        ),
        (
            file(
                r#"{"w":{"dtype":"F128","shape":[2],"data_offsets":[0,16]}}"#,
                &[0; 16],
            ),
            |e| matches!(e, Error::UnknownDtype { dtype, .. } if dtype == "F128"),
            "\"F128\"",
        ),
        (
            file(
                r#"{"w":{"dtype":"U8","shape":[0],"data_offsets":[8,0]}}"#,
                &[0; 8],
            ),
            |e| {
                matches!(
                    e,
                    Error::InvalidOffsets {
                        offsets: [8, 0],
                        ..
                    }
                )
            },
            "gaps or overlaps",
        ),
        (
            file(
                r#"{"w":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#,
                &[0; 8],
            ),
            |e| {
                matches!(
                    e,
                    Error::InvalidOffsets {
                        expected_begin: 0,
                        ..
                    }
                )
            },
            "must begin at 0",
        ),
        (
            file(
                r#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}}"#,
                &[0; 12],
            ),
            |e| matches!(e, Error::InvalidOffsets { tensor, expected_begin: 8, .. } if tensor == "b"),
            "must begin at 8",
        ),
        (
            file(
                r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
            |e| {
                matches!(
                    e,
                    Error::SizeMismatch {
                        expected: 12,
                        offsets: [0, 8],
                        ..
                    }
                )
            },
            "need 12",
        ),
        (
            file(
                r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                &[0; 8],
            ),
            |e| {
                matches!(
                    e,
                    Error::DataLength {
                        covered: 16,
                        data_len: 8
                    }
                )
            },
            "data section",
        ),
        (
            file(
                r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                &[0; 9],
            ),
            |e| {
                matches!(
                    e,
                    Error::DataLength {
                        covered: 8,
                        data_len: 9
                    }
                )
            },
            "data section",
        ),
        (
            file(
                r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#,
                &[0; 2],
            ),
            |e| matches!(e, Error::DuplicateName { name } if name == "a"),
            "unique",
        ),
        (
            file(
                r#"{"w":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,0]}}"#,
                &[],
            ),
            |e| matches!(e, Error::ShapeOverflow { .. }),
            "overflows",
        ),
        (
            file(
                r#"{"w":{"dtype":"F32","shape":[0,9223372036854775808],"data_offsets":[0,0]}}"#,
                &[],
            ),
            |e| matches!(e, Error::ShapeOverflow { shape, .. } if shape[1] == 1 << 63),
            "2^63 - 1",
        ),
        (
            file(
                r#"{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#,
                &[0; 2],
            ),
            |e| matches!(e, Error::NotWholeBytes { bits: 12, .. }),
            "whole number of bytes",
        ),
        (
            file(r#"{"__metadata__":{"a":1}}"#, &[]),
            |e| matches!(e, Error::Field { field, .. } if field == "a"),
            "metadata values are strings",
        ),
        (
            file(r#"{"__metadata__":[]}"#, &[]),
            |e| matches!(e, Error::Field { field, .. } if field.is_empty()),
            "entry \"__metadata__\" must be null or an object of strings",
        ),
        (
            file(r#"{"__metadata__":{"a":"1","a":"2"}}"#, &[]),
            |e| {
                matches!(
                    e,
                    Error::Field {
                        rule: "is given twice",
                        ..
                    }
                )
            },
            "twice",
        ),
        (
            file(r#"{"__metadata__":null,"__metadata__":null}"#, &[]),
            |e| matches!(e, Error::DuplicateName { .. }),
            "twice",
        ),
        (
            file(
                &format!("{}{}{}", "{\"w\":{\"x\":", "[".repeat(200), "]}}"),
                &[],
            ),
            |e| matches!(e, Error::Json { .. }),
            "128 deep",
        ),
    ]
}

#[test]
fn every_broken_rule_is_refused_with_its_error() {
    for (i, (bytes, check, words)) in cases().into_iter().enumerate() {
        let err = refused(&bytes);
        assert!(check(&err), "case {i}: unexpected {err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(words),
            "case {i}: {msg:?} does not say {words:?}"
        );
        assert_eq!(err.kind(), dlpack_core::ErrorKind::Value, "case {i}");
        // The same through the file API.
        assert!(SafetensorsFile::from_bytes(bytes).is_err());
    }
}

#[test]
fn what_the_format_allows_is_accepted() {
    // Unknown fields of any JSON type are ignored; escapes are decoded;
    // whitespace anywhere; null metadata; zero-size tensors anywhere.
    let json = r#" { "__metadata__" : null ,
        "a\n\u00e9\ud83d\ude00" : { "extra": [1, -2.5e+3, {"x": [true, false, null]}, "s"],
            "dtype" : "U8", "shape" : [ 2 ] , "data_offsets" : [ 0 , 2 ] },
        "z" : {"dtype":"F64","shape":[0,3],"data_offsets":[2,2]} }   "#;
    let h = Header::parse(&file(json, &[1, 2])).unwrap();
    assert_eq!(h.len(), 2);
    let a = h.tensor("a\n\u{e9}\u{1f600}").unwrap();
    assert_eq!(a.shape, &[2]);
    assert_eq!(h.tensor("z").unwrap().data_offsets, [2, 2]);
    assert_eq!(h.metadata().count(), 0);
}

#[test]
fn a_misaligned_tensor_is_refused_for_sharing_and_copied_on_request() {
    // U8 [0, 1) then F32 [1, 5): the F32 starts at an odd offset.
    let json = r#"{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}"#;
    let json = format!("{json:<width$}", width = json.len().next_multiple_of(8));
    let mut data = vec![9u8];
    data.extend_from_slice(&2.5f32.to_le_bytes());
    let file = SafetensorsFile::from_bytes(file(&json, &data)).unwrap();
    let addr = file.bytes().as_ptr() as usize + file.header().data_start() + 1;
    if addr % 4 == 0 {
        return; // the allocator placed the bytes so that it is aligned after all
    }
    let err = file.tensor("f").unwrap_err();
    assert!(
        matches!(err, Error::Misaligned { alignment: 4, .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), dlpack_core::ErrorKind::Buffer);
    assert!(err.to_string().contains("not aligned"));
    assert!(file.tensors(false).is_err());
    let all = file.tensors(true).unwrap();
    assert_eq!(all[1].0, "f");
    assert!(all[1].1.flags().is_copied());
    assert_eq!(all[1].1.view().as_slice::<f32>().unwrap(), &[2.5]);
    assert!(!all[0].1.flags().is_copied());
}

#[test]
#[cfg_attr(miri, ignore = "files are an operating-system facility")]
fn files_that_cannot_be_opened_are_io_errors() {
    let missing = std::env::temp_dir().join("dlpack-safetensors-no-such-file.safetensors");
    let err = SafetensorsFile::open(&missing).unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    );
    assert!(err.to_string().contains("no-such-file"));
    let empty = std::env::temp_dir().join(format!("dlpack-st-empty-{}", std::process::id()));
    std::fs::write(&empty, b"").unwrap();
    let err = SafetensorsFile::open(&empty).unwrap_err();
    std::fs::remove_file(&empty).unwrap();
    assert!(matches!(err, Error::HeaderTooSmall { len: 0 }));
}
