//! Mutated files: the reader never panics, accepts exactly what the
//! `safetensors` crate (the format's reference reader) accepts — except
//! names and metadata keys given twice, which it refuses where serde keeps
//! the last — and what it accepts lies inside the file.

use dlpack_core::export::Export;
use dlpack_safetensors::{Dtype, Error, Header, SafetensorsFile, consumer};
use proptest::prelude::*;

/// A valid file of up to four tensors with small shapes.
fn valid_file() -> impl Strategy<Value = Vec<u8>> {
    let tensor = (0..Dtype::ALL.len(), prop::collection::vec(0i64..4, 0..3));
    prop::collection::vec(tensor, 0..4).prop_map(|tensors| {
        let exports: Vec<_> = tensors
            .iter()
            .map(|(d, shape)| {
                let dtype = Dtype::ALL[*d];
                let mut shape = shape.clone();
                // Packed types need whole bytes: an even count of 4 elements.
                if dtype.bits() < 8 {
                    shape.push(4);
                }
                let n: i64 = shape.iter().product();
                let len = n as usize * usize::from(dtype.bits()) / 8;
                Export::new(vec![0xA5u8; len])
                    .dtype(dtype.to_dlpack())
                    .shape(&shape)
                    .versioned()
                    .unwrap()
            })
            .collect();
        let views: Vec<_> = exports.iter().map(|t| t.view()).collect();
        let names: Vec<String> = (0..views.len()).map(|i| format!("t{i}")).collect();
        let named: Vec<_> = names.iter().map(String::as_str).zip(&views).collect();
        consumer::serialize(&named, &[("format", "pt")]).unwrap()
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Overwrite byte at (fraction of the header) with a value.
    Byte(f64, u8),
    /// Overwrite with a byte JSON cares about.
    Token(f64, u8),
    /// Set the header length.
    Length(u64),
    /// Truncate at a fraction of the file.
    Truncate(f64),
    /// Append bytes to the data.
    Append(u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let tokens = prop::sample::select(b"{}[],:\"\\-0123456789.eEtfnu \x00".to_vec());
    prop_oneof![
        (0.0..1.0, any::<u8>()).prop_map(|(at, b)| Mutation::Byte(at, b)),
        (0.0..1.0, tokens).prop_map(|(at, b)| Mutation::Token(at, b)),
        prop_oneof![any::<u64>(), 0u64..400].prop_map(Mutation::Length),
        (0.0..1.0).prop_map(Mutation::Truncate),
        (1u8..9).prop_map(Mutation::Append),
    ]
}

fn apply(mut file: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let header_end = file.len().min(
            8 + u64::from_le_bytes(file.get(..8).unwrap_or(&[0; 8]).try_into().unwrap()) as usize,
        );
        let at = |f: f64| 8 + ((header_end.saturating_sub(8)) as f64 * f) as usize;
        match *m {
            Mutation::Byte(f, b) | Mutation::Token(f, b) => {
                if let Some(x) = file.get_mut(at(f)) {
                    *x = b;
                }
            }
            Mutation::Length(n) => {
                if file.len() >= 8 {
                    file[..8].copy_from_slice(&n.to_le_bytes());
                }
            }
            Mutation::Truncate(f) => file.truncate((file.len() as f64 * f) as usize),
            Mutation::Append(n) => file.extend(std::iter::repeat_n(0, n.into())),
        }
    }
    file
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Under miri: few cases, and no failure-persistence file (miri
        // isolates the file system).
        cases: if cfg!(miri) { 8 } else { 2000 },
        failure_persistence: if cfg!(miri) { None } else { ProptestConfig::default().failure_persistence },
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_files_are_refused_or_read_in_range(
        file in valid_file(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let bytes = apply(file, &mutations);
        let ours = Header::parse(&bytes);
        let theirs = safetensors::SafeTensors::read_metadata(&bytes);
        match (&ours, &theirs) {
            (Ok(h), Ok((_, meta))) => {
                prop_assert_eq!(h.len(), meta.tensors().len());
                for t in h.tensors() {
                    let info = meta.info(t.name).unwrap();
                    prop_assert_eq!(t.dtype.name(), format!("{:?}", info.dtype));
                    let shape: Vec<i64> = info.shape.iter().map(|&d| d as i64).collect();
                    prop_assert_eq!(t.shape, &shape[..]);
                    prop_assert_eq!(t.data_offsets, [info.data_offsets.0 as u64, info.data_offsets.1 as u64]);
                }
            }
            (Err(Error::DuplicateName { .. } | Error::Field { rule: "is given twice", .. }), Ok(_)) => {}
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "ours {:?}, theirs {:?}, header {:?}", ours.as_ref().err(),
                theirs.as_ref().err(), String::from_utf8_lossy(&bytes[8.min(bytes.len())..])),
        }
        if let Ok(file) = SafetensorsFile::from_bytes(bytes.clone()) {
            let names: Vec<String> = file.names().map(String::from).collect();
            for name in names {
                match file.tensor(&name) {
                    Ok(t) => {
                        let range = file.bytes().as_ptr_range();
                        let v = t.view();
                        if v.num_elements() != 0 {
                            prop_assert!(range.contains(&v.data_ptr().cast_const()));
                        }
                    }
                    Err(Error::Misaligned { .. }) => {
                        prop_assert!(file.copy_tensor(&name).is_ok());
                    }
                    Err(err) => prop_assert!(false, "{name}: {err}"),
                }
            }
        }
    }
}
