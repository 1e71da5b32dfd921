//! The protocol rules as tables that mirror the standard line by line.
#![allow(clippy::type_complexity)] // rule tables are tuples, one row per line of the standard

use dlpack_core::ffi::{
    DLDevice, DLDeviceType, DLPACK_FLAG_BITMASK_IS_COPIED as COPIED,
    DLPACK_FLAG_BITMASK_READ_ONLY as RO,
};
use dlpack_core::protocol::{
    Abi, DeviceStream, DlpackRequest, StreamRequest, Transfer, decide_transfer, decode_stream,
    negotiate_version, plan_dlpack,
};
use dlpack_core::sync::{SyncAction, plan_sync};
use dlpack_core::tensor::Flags;
use dlpack_core::{Error, ErrorKind};

/// Spec §4.1: allowed `stream` values per device type.
#[test]
fn stream_values_per_device() {
    use DeviceStream::*;
    use StreamRequest::*;
    let cuda = DLDeviceType::kDLCUDA;
    let managed = DLDeviceType::kDLCUDAManaged;
    let rocm = DLDeviceType::kDLROCM;
    let cpu = DLDeviceType::kDLCPU;
    #[rustfmt::skip]
    let rows: &[(DLDeviceType, Option<i64>, Option<StreamRequest>)] = &[
        // CUDA: None = legacy default, -1 no sync, 0 refused, 1 legacy, 2 per-thread, >2 handle.
        (cuda, None,         Some(Sync(CudaLegacyDefault))),
        (cuda, Some(-1),     Some(NoSync)),
        (cuda, Some(0),      None),
        (cuda, Some(1),      Some(Sync(CudaLegacyDefault))),
        (cuda, Some(2),      Some(Sync(CudaPerThreadDefault))),
        (cuda, Some(0x7f00), Some(Sync(Handle(0x7f00)))),
        (cuda, Some(-2),     None),
        (managed, Some(2),   Some(Sync(CudaPerThreadDefault))),
        (managed, Some(0),   None),
        // ROCm: None and 0 = default stream, 1 and 2 refused.
        (rocm, None,         Some(Sync(RocmDefault))),
        (rocm, Some(-1),     Some(NoSync)),
        (rocm, Some(0),      Some(Sync(RocmDefault))),
        (rocm, Some(1),      None),
        (rocm, Some(2),      None),
        (rocm, Some(3),      Some(Sync(Handle(3)))),
        // CPU and the rest: only None.
        (cpu, None,          Some(Streamless)),
        (cpu, Some(-1),      None),
        (cpu, Some(0),       None),
        (cpu, Some(1),       None),
        (DLDeviceType::kDLCUDAHost, Some(1), None),
        (DLDeviceType::kDLOneAPI, None, Some(Streamless)),
    ];
    for &(device, stream, expected) in rows {
        let got = decode_stream(device, stream);
        match expected {
            Some(req) => assert_eq!(got, Ok(req), "{device:?} stream={stream:?}"),
            None => {
                let err = got.expect_err("must be refused");
                assert_eq!(err.kind(), ErrorKind::Value, "{device:?} stream={stream:?}");
                let msg = err.to_string();
                assert!(
                    msg.contains(&format!("stream={}", stream.unwrap())),
                    "{msg}"
                );
                assert!(msg.contains(&format!("{device:?}")), "{msg}");
            }
        }
    }
}

#[test]
fn raw_stream_handles() {
    assert_eq!(DeviceStream::CudaLegacyDefault.as_raw(), 1);
    assert_eq!(DeviceStream::CudaPerThreadDefault.as_raw(), 2);
    assert_eq!(DeviceStream::RocmDefault.as_raw(), 0);
    let cuda = DLDeviceType::kDLCUDA.stream_kind();
    let rocm = DLDeviceType::kDLROCM.stream_kind();
    assert_eq!(
        DeviceStream::from_raw(cuda, 0),
        Some(DeviceStream::CudaLegacyDefault)
    );
    assert_eq!(
        DeviceStream::from_raw(rocm, 0),
        Some(DeviceStream::RocmDefault)
    );
    assert_eq!(
        DeviceStream::from_raw(rocm, 99),
        Some(DeviceStream::Handle(99))
    );
    assert_eq!(
        DeviceStream::from_raw(DLDeviceType::kDLCPU.stream_kind(), 5),
        None
    );
}

/// Spec §3.4: the producer's version negotiation.
#[test]
fn version_negotiation() {
    #[rustfmt::skip]
    let rows: &[(Option<(i64, i64)>, Result<Abi, ()>)] = &[
        (None,          Ok(Abi::Legacy)),
        (Some((0, 0)),  Ok(Abi::Legacy)),
        (Some((0, 8)),  Ok(Abi::Legacy)),
        (Some((1, 0)),  Ok(Abi::Versioned)),
        (Some((1, 3)),  Ok(Abi::Versioned)),
        (Some((1, 99)), Ok(Abi::Versioned)),
        (Some((2, 0)),  Ok(Abi::Versioned)),
        (Some((-1, 0)), Err(())),
        (Some((1, -1)), Err(())),
    ];
    for &(max, expected) in rows {
        assert_eq!(
            negotiate_version(max).map_err(|e| assert_eq!(e.kind(), ErrorKind::Value)),
            expected,
            "{max:?}"
        );
    }
    assert_eq!(Abi::Legacy.capsule_name(), c"dltensor");
    assert_eq!(Abi::Legacy.used_capsule_name(), c"used_dltensor");
    assert_eq!(Abi::Versioned.capsule_name(), c"dltensor_versioned");
    assert_eq!(
        Abi::Versioned.used_capsule_name(),
        c"used_dltensor_versioned"
    );
    assert_eq!(
        Abi::from_capsule_name(c"dltensor_versioned"),
        Some(Abi::Versioned)
    );
    assert_eq!(Abi::from_capsule_name(c"used_dltensor"), None);
}

/// Spec §3.1: `dl_device` and `copy`.
#[test]
fn copy_and_device_decisions() {
    let cpu = DLDevice::cpu();
    let cuda0 = DLDevice::cuda(0);
    let cuda1 = DLDevice::cuda(1);
    let pinned = DLDevice::new(DLDeviceType::kDLCUDAHost, 0);
    let rocm = DLDevice::rocm(0);
    let opencl = DLDevice::new(DLDeviceType::kDLOpenCL, 0);
    #[rustfmt::skip]
    let rows: &[(DLDevice, Option<DLDevice>, Option<bool>, Result<Transfer, &str>)] = &[
        (cpu,    None,        None,        Ok(Transfer::Share { device: cpu })),
        (cpu,    None,        Some(false), Ok(Transfer::Share { device: cpu })),
        (cpu,    None,        Some(true),  Ok(Transfer::Copy { device: cpu })),
        (cpu,    Some(cpu),   Some(true),  Ok(Transfer::Copy { device: cpu })),
        (cpu,    Some(cuda0), None,        Err("unsupported")),
        (cuda0,  None,        None,        Ok(Transfer::Share { device: cuda0 })),
        (cuda0,  Some(cpu),   None,        Ok(Transfer::Copy { device: cpu })),
        (cuda0,  Some(cpu),   Some(true),  Ok(Transfer::Copy { device: cpu })),
        (cuda0,  Some(cpu),   Some(false), Err("copy")),
        (cuda0,  Some(cuda1), None,        Err("unsupported")),
        (rocm,   Some(cpu),   None,        Ok(Transfer::Copy { device: cpu })),
        (pinned, Some(cpu),   None,        Ok(Transfer::Share { device: cpu })),
        (pinned, Some(cpu),   Some(false), Ok(Transfer::Share { device: cpu })),
        (opencl, Some(cpu),   None,        Err("unsupported")),
        (cpu,    Some(DLDevice::new(DLDeviceType::kDLCPU, 1)), None, Err("unsupported")),
    ];
    for &(source, dl_device, copy, expected) in rows {
        let got = decide_transfer(source, dl_device, copy);
        match expected {
            Ok(t) => assert_eq!(got, Ok(t), "{source:?} -> {dl_device:?} copy={copy:?}"),
            Err(which) => {
                let err = got.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Buffer);
                match which {
                    "copy" => assert!(matches!(err, Error::CopyRequired { .. }), "{err}"),
                    _ => assert!(
                        matches!(err, Error::UnsupportedTargetDevice { .. }),
                        "{err}"
                    ),
                }
            }
        }
    }
}

#[test]
fn whole_dlpack_plans() {
    let v13 = Some((1, 3));
    let cpu = DLDevice::cpu();
    let cuda = DLDevice::cuda(0);
    let req = |stream, max_version, dl_device, copy| DlpackRequest {
        stream,
        max_version,
        dl_device,
        copy,
    };

    // Read-only on the versioned path is flagged; on the legacy path refused.
    let p = plan_dlpack(cpu, true, &req(None, v13, None, None)).unwrap();
    assert_eq!((p.abi, p.flags), (Abi::Versioned, RO));
    let e = plan_dlpack(cpu, true, &req(None, None, None, None)).unwrap_err();
    assert_eq!(e, Error::ReadOnlyLegacyExport);
    assert_eq!(e.kind(), ErrorKind::Buffer);
    // ... unless a copy is made: the copy is writable.
    let p = plan_dlpack(cpu, true, &req(None, None, None, Some(true))).unwrap();
    assert_eq!((p.abi, p.flags), (Abi::Legacy, COPIED));

    // Data of unknown writability (a legacy source) is never upgraded: it
    // goes out legacy as it came, or versioned READ_ONLY; a copy is writable.
    let legacy = Flags::LEGACY;
    let p = plan_dlpack(cpu, legacy, &req(None, v13, None, None)).unwrap();
    assert_eq!((p.abi, p.flags), (Abi::Versioned, RO));
    let p = plan_dlpack(cpu, legacy, &req(None, None, None, None)).unwrap();
    assert_eq!((p.abi, p.flags), (Abi::Legacy, 0));
    let p = plan_dlpack(cpu, legacy, &req(None, v13, None, Some(true))).unwrap();
    assert_eq!((p.abi, p.flags), (Abi::Versioned, COPIED));
    // A tensor's flags plan as their access says.
    for (flags, versioned) in [(Flags::from_bits(0), 0), (Flags::from_bits(RO), RO)] {
        let p = plan_dlpack(cpu, flags, &req(None, v13, None, None)).unwrap();
        assert_eq!((p.abi, p.flags), (Abi::Versioned, versioned), "{flags:?}");
    }

    // A CPU producer refuses any stream but None.
    let e = plan_dlpack(cpu, false, &req(Some(-1), v13, None, None)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Value);

    // CUDA: the consumer's stream is decoded; copy to host validates the
    // stream against the target (kDLCPU: only None).
    let p = plan_dlpack(cuda, false, &req(Some(0x99), v13, None, None)).unwrap();
    assert_eq!(p.stream, StreamRequest::Sync(DeviceStream::Handle(0x99)));
    let p = plan_dlpack(cuda, false, &req(None, v13, Some(cpu), None)).unwrap();
    assert_eq!(
        (p.transfer, p.stream, p.flags),
        (
            Transfer::Copy { device: cpu },
            StreamRequest::Streamless,
            COPIED
        )
    );
    let e = plan_dlpack(cuda, false, &req(Some(1), v13, Some(cpu), None)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Value);
    let e = plan_dlpack(cuda, false, &req(None, v13, Some(cpu), Some(false))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Buffer);
    let e = plan_dlpack(cuda, false, &req(Some(0), v13, None, None)).unwrap_err();
    assert!(e.to_string().contains("0 is disallowed for CUDA"), "{e}");
}

#[test]
fn sync_decisions() {
    let a = DeviceStream::Handle(0xa000);
    let b = DeviceStream::Handle(0xb000);
    let legacy = DeviceStream::CudaLegacyDefault;
    #[rustfmt::skip]
    let rows = [
        (StreamRequest::Sync(b),      Some(a),      SyncAction::Wait { producer: a, consumer: b }),
        (StreamRequest::Sync(legacy), Some(a),      SyncAction::Wait { producer: a, consumer: legacy }),
        (StreamRequest::Sync(a),      Some(a),      SyncAction::Nothing),
        (StreamRequest::Sync(legacy), Some(DeviceStream::Handle(1)), SyncAction::Nothing),
        (StreamRequest::Sync(b),      None,         SyncAction::Nothing),
        (StreamRequest::NoSync,       Some(a),      SyncAction::Nothing),
        (StreamRequest::Streamless,   Some(a),      SyncAction::Nothing),
    ];
    for (req, producer, expected) in rows {
        assert_eq!(
            plan_sync(req, producer),
            expected,
            "{req:?} after {producer:?}"
        );
    }
}

#[test]
fn error_kinds_map_onto_python_exceptions() {
    assert_eq!(ErrorKind::Buffer.python_name(), "BufferError");
    assert_eq!(ErrorKind::Value.python_name(), "ValueError");
    assert_eq!(ErrorKind::Type.python_name(), "TypeError");
    assert_eq!(
        ErrorKind::NotImplemented.python_name(),
        "NotImplementedError"
    );
    let mismatch = Error::DtypeMismatch {
        expected: dlpack_core::ffi::DLDataType::F32,
        found: dlpack_core::ffi::DLDataType::I64,
    };
    assert_eq!(mismatch.kind(), ErrorKind::Type);
    assert_eq!(
        mismatch.to_string(),
        "dtype is int64 but float32 was asked for"
    );
}
