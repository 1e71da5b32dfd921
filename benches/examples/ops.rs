//! The operations of `benches/vs_dlpark.rs`, one per run, for counting
//! instructions (steady on a host whose clock speed drifts):
//!
//! ```sh
//! valgrind --tool=callgrind --toggle-collect='ops::timed' \
//!     target/release/examples/ops export_vec_1000_and_release ours
//! ```
//!
//! Only `timed` (the operation, [`ROUNDS`] times over inputs made before) is
//! counted. Shapes go through `black_box` on both sides, so that neither
//! crate's checks are folded away for a shape known at compile time.
//! `cargo xtask bench` runs every operation on both sides and prints
//! instructions per operation and their ratio.

use std::hint::black_box;

use dlpack_benches::{
    MODEL_FIRST, ModelFile, dlpark_export_image, dlpark_export_vec, fresh_export,
    fresh_image_export, rgb_image,
};
use dlpack_core::export::Export;
use dlpack_core::ffi::{DLDataType, DLDevice, DLManagedTensorVersioned};
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_image::{AsImage, IntoDlpack};
use dlpark::TryFromDlpack;
use image::{ImageBuffer, Rgb};
use ndarray::{Array2, ArrayViewD};

/// Times each operation runs; callers divide the count by it.
const ROUNDS: usize = 1000;

/// The operations, as named in the criterion groups of `vs_dlpark`.
const OPERATIONS: &[&str] = &[
    "export_vec_1000_and_release",
    "export_vec_10x10x10_and_release",
    "export_array2_100x10_and_release",
    "import_raw_and_validate",
    "import_fresh_export_and_release",
    "ndarray_view_dyn",
    "import_view_and_release",
    "export_image_rgb8_64x48_and_release",
    "image_view_rgb8",
    "import_image_view_and_release",
    "safetensors_open_first_tensor",
    "export_candle_f32_64x48_contiguous_and_release",
    "export_candle_f32_64x48_transposed_and_release",
];

/// Runs `op` on every input: the only function whose instructions count.
#[inline(never)]
fn timed<I, O>(inputs: Vec<I>, mut op: impl FnMut(I) -> O) {
    for input in inputs {
        black_box(op(black_box(input)));
    }
}

fn vecs(len: usize) -> Vec<Vec<f32>> {
    (0..ROUNDS).map(|_| vec![1.0f32; len]).collect()
}

fn fresh_exports() -> Vec<*mut DLManagedTensorVersioned> {
    (0..ROUNDS).map(|_| fresh_export()).collect()
}

fn run(operation: &str, ours: bool) {
    match (operation, ours) {
        ("export_vec_1000_and_release", true) => timed(vecs(1000), |v| {
            drop(
                Export::new(v)
                    .shape(black_box(&[1000]))
                    .versioned()
                    .unwrap(),
            )
        }),
        ("export_vec_1000_and_release", false) => timed(vecs(1000), |v| {
            drop(dlpark_export_vec(v, black_box(&[1000]), black_box(&[1])))
        }),
        ("export_vec_10x10x10_and_release", true) => timed(vecs(1000), |v| {
            drop(
                Export::new(v)
                    .shape(black_box(&[10, 10, 10]))
                    .versioned()
                    .unwrap(),
            )
        }),
        ("export_vec_10x10x10_and_release", false) => timed(vecs(1000), |v| {
            drop(dlpark_export_vec(
                v,
                black_box(&[10, 10, 10]),
                black_box(&[100, 10, 1]),
            ))
        }),
        ("export_array2_100x10_and_release", _) => {
            let arrays = (0..ROUNDS)
                .map(|_| Array2::<f32>::ones((100, 10)))
                .collect();
            if ours {
                timed(arrays, |a| {
                    drop(
                        dlpack_ndarray::export::ArrayExport::new(a)
                            .versioned()
                            .unwrap(),
                    )
                })
            } else {
                timed(arrays, |a| {
                    let initialized: dlpark::allocation::dynamic::Initialized<
                        dlpark::ffi::DLManagedTensorVersioned,
                    > = Box::new(a).try_into().unwrap();
                    // SAFETY: dlpark's ndarray producer filled every field.
                    drop(unsafe { initialized.finish() })
                })
            }
        }
        ("import_raw_and_validate", _) => {
            let (mut data, mut shape, mut strides) = (vec![0f32; 1000], [1000i64], [1i64]);
            // SAFETY: all-zero is a valid DLManagedTensorVersioned (no
            // deleter, null pointers); the fields read are set below.
            let mut managed: DLManagedTensorVersioned = unsafe { std::mem::zeroed() };
            managed.version.major = 1;
            managed.version.minor = 3;
            managed.dl_tensor.data = data.as_mut_ptr().cast();
            managed.dl_tensor.device = DLDevice::cpu();
            managed.dl_tensor.ndim = 1;
            managed.dl_tensor.dtype = DLDataType::F32;
            managed.dl_tensor.shape = shape.as_mut_ptr();
            managed.dl_tensor.strides = strides.as_mut_ptr();
            let raw: *mut DLManagedTensorVersioned = &mut managed;
            let inputs = vec![raw; ROUNDS];
            if ours {
                timed(inputs, |raw| {
                    // SAFETY: a valid tensor without deleter, alive here.
                    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
                    t.view().num_elements()
                })
            } else {
                timed(inputs, |raw| {
                    // SAFETY: as above; dlpark's struct has the same layout.
                    let t = unsafe { dlpark::versioned::Dlpack::from_raw(raw.cast()) }.unwrap();
                    t.validate().unwrap().shape().len() as u64
                })
            }
        }
        ("import_fresh_export_and_release", true) => timed(fresh_exports(), |raw| {
            // SAFETY: a fresh export, owned from here on.
            let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
            t.view().num_elements()
        }),
        ("import_fresh_export_and_release", false) => timed(fresh_exports(), |raw| {
            // SAFETY: as above; same C layout.
            let t = unsafe { dlpark::versioned::Dlpack::from_raw(raw.cast()) }.unwrap();
            t.validate().unwrap().shape().len() as u64
        }),
        ("ndarray_view_dyn", true) => {
            // SAFETY: a fresh export, owned from here on.
            let t = unsafe { ManagedTensorVersioned::from_raw(fresh_export()) }.unwrap();
            timed(vec![&t; ROUNDS], |t| {
                let view = t.view();
                dlpack_ndarray::import::array_view_dyn::<f32>(&view)
                    .unwrap()
                    .len()
            })
        }
        ("ndarray_view_dyn", false) => {
            // SAFETY: a fresh export, owned from here on.
            let t = unsafe { dlpark::versioned::Dlpack::from_raw(fresh_export().cast()) }.unwrap();
            timed(vec![&t; ROUNDS], |t| {
                // SAFETY: the tensor's memory lives as long as `t`.
                unsafe { ArrayViewD::<f32>::try_from_dlpack(t, ()) }
                    .unwrap()
                    .len()
            })
        }
        ("import_view_and_release", true) => timed(fresh_exports(), |raw| {
            // SAFETY: a fresh export, owned from here on.
            let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
            let view = t.view();
            dlpack_ndarray::import::array_view_dyn::<f32>(&view)
                .unwrap()
                .len()
        }),
        ("import_view_and_release", false) => timed(fresh_exports(), |raw| {
            // SAFETY: as above; same C layout.
            let t = unsafe { dlpark::versioned::Dlpack::from_raw(raw.cast()) }.unwrap();
            // SAFETY: the tensor's memory lives as long as `t`.
            unsafe { ArrayViewD::<f32>::try_from_dlpack(&t, ()) }
                .unwrap()
                .len()
        }),
        ("export_image_rgb8_64x48_and_release", _) => {
            let images = (0..ROUNDS).map(|_| rgb_image()).collect();
            if ours {
                timed(images, |img| drop(img.into_dlpack_versioned().unwrap()))
            } else {
                timed(images, |img| drop(dlpark_export_image(img)))
            }
        }
        ("image_view_rgb8", true) => {
            // SAFETY: a fresh export, owned from here on.
            let t = unsafe { ManagedTensorVersioned::from_raw(fresh_image_export()) }.unwrap();
            timed(vec![&t; ROUNDS], |t| {
                t.as_image::<Rgb<u8>>().unwrap().width()
            })
        }
        ("image_view_rgb8", false) => {
            // SAFETY: a fresh export, owned from here on; same C layout.
            let t = unsafe { dlpark::versioned::Dlpack::from_raw(fresh_image_export().cast()) }
                .unwrap();
            timed(vec![&t; ROUNDS], |t| {
                // SAFETY: the tensor's memory lives as long as `t`.
                unsafe { ImageBuffer::<Rgb<u8>, &[u8]>::try_from_dlpack(t, ()) }
                    .unwrap()
                    .width()
            })
        }
        ("import_image_view_and_release", _) => {
            let exports = (0..ROUNDS).map(|_| fresh_image_export()).collect();
            if ours {
                timed(exports, |raw| {
                    // SAFETY: a fresh export, owned from here on.
                    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
                    t.as_image::<Rgb<u8>>().unwrap().width()
                })
            } else {
                timed(exports, |raw| {
                    // SAFETY: as above; same C layout.
                    let t = unsafe { dlpark::versioned::Dlpack::from_raw(raw.cast()) }.unwrap();
                    // SAFETY: the tensor's memory lives as long as `t`.
                    unsafe { ImageBuffer::<Rgb<u8>, &[u8]>::try_from_dlpack(&t, ()) }
                        .unwrap()
                        .width()
                })
            }
        }
        ("safetensors_open_first_tensor", _) => {
            let file = ModelFile::new();
            let paths = vec![file.path(); ROUNDS];
            if ours {
                timed(paths, |path| {
                    let f = dlpack_safetensors::SafetensorsFile::open(path).unwrap();
                    drop(f.tensor(MODEL_FIRST).unwrap());
                })
            } else {
                timed(paths, |path| {
                    let f = dlpark::interop::safetensors::SafeTensorFile::open(path).unwrap();
                    drop(f.tensor(MODEL_FIRST).unwrap());
                })
            }
        }
        (
            "export_candle_f32_64x48_contiguous_and_release"
            | "export_candle_f32_64x48_transposed_and_release",
            _,
        ) => {
            use candle_core::{Device, Tensor};
            let t = Tensor::arange(0f32, 64. * 48., &Device::Cpu)
                .unwrap()
                .reshape((64, 48))
                .unwrap();
            let t = if operation.contains("transposed") {
                t.t().unwrap()
            } else {
                t
            };
            if ours {
                timed(vec![&t; ROUNDS], |t| {
                    drop(dlpack_candle::export(t).unwrap())
                })
            } else {
                timed(vec![&t; ROUNDS], |t| {
                    let initialized: dlpark::allocation::dynamic::Initialized<
                        dlpark::ffi::DLManagedTensorVersioned,
                    > = Box::new(t.clone()).try_into().unwrap();
                    // SAFETY: dlpark's candle producer filled every field.
                    drop(unsafe { initialized.finish() })
                })
            }
        }
        _ => unreachable!("checked in main"),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (operation, side) = (args.next(), args.next());
    match (operation.as_deref(), side.as_deref()) {
        (Some(operation), Some(side @ ("ours" | "dlpark"))) if OPERATIONS.contains(&operation) => {
            run(operation, side == "ours")
        }
        (Some("--list"), None) => {
            println!("{ROUNDS}");
            for operation in OPERATIONS {
                println!("{operation}");
            }
        }
        _ => {
            eprintln!("usage: ops <operation> ours|dlpark, or ops --list; operations:");
            for operation in OPERATIONS {
                eprintln!("  {operation}");
            }
            std::process::exit(2);
        }
    }
}
