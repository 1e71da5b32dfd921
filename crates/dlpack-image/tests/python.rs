//! The Python reach, against the real consumers and producers: images
//! exported from Rust read by `numpy.from_dlpack` and `torch.from_dlpack`
//! over the image's own pixels, and NumPy / torch HWC arrays read in Rust as
//! image views and owned images over the arrays' own memory. CPython is
//! embedded (pyo3 `auto-initialize`, the interpreter of `PYO3_PYTHON`:
//! `cargo xtask test` runs this with its venv).

use std::sync::Arc;

use dlpack_image::Error as ImageError;
use dlpack_image::producer::ImageExport;
use dlpack_image::python::{Error, copy_from_python, from_python, to_python, with_image};
use dlpack_test_support::python::{eval, make};
use image::{ImageBuffer, Luma, Rgb, RgbImage, Rgba};
use pyo3::exceptions::{PyBufferError, PyTypeError};
use pyo3::prelude::*;

fn address(py: Python<'_>, array: &Bound<'_, PyAny>) -> usize {
    eval(
        py,
        "x.data_ptr() if isinstance(x, torch.Tensor) else x.ctypes.data",
        array,
    )
    .extract()
    .unwrap()
}

#[test]
fn numpy_reads_exported_images_in_place() {
    Python::attach(|py| {
        let img = RgbImage::from_fn(5, 3, |x, y| Rgb([x as u8, y as u8, 9]));
        let pixels = img.as_ptr() as usize;
        let a = eval(py, "np.from_dlpack(x)", &to_python(py, img).unwrap());
        let (shape, dtype, writable): ((usize, usize, usize), String, bool) =
            eval(py, "(x.shape, str(x.dtype), x.flags.writeable)", &a)
                .extract()
                .unwrap();
        assert_eq!(
            (shape, dtype.as_str(), writable),
            ((3, 5, 3), "uint8", true)
        );
        assert_eq!(address(py, &a), pixels, "zero-copy");
        assert_eq!(
            eval(py, "x[2, 4].tolist()", &a)
                .extract::<Vec<u8>>()
                .unwrap(),
            [4, 2, 9]
        );

        // u16 and f32 subpixels, one and four channels.
        let gray = ImageBuffer::<Luma<u16>, Vec<u16>>::from_pixel(2, 4, Luma([700]));
        let a = eval(py, "np.from_dlpack(x)", &to_python(py, gray).unwrap());
        let got: ((usize, usize, usize), String) =
            eval(py, "(x.shape, str(x.dtype))", &a).extract().unwrap();
        assert_eq!(got, ((4, 2, 1), "uint16".to_owned()));
        let rgba = ImageBuffer::<Rgba<f32>, Vec<f32>>::from_pixel(1, 2, Rgba([0.5; 4]));
        let a = eval(py, "np.from_dlpack(x)", &to_python(py, rgba).unwrap());
        let got: ((usize, usize, usize), String) =
            eval(py, "(x.shape, str(x.dtype))", &a).extract().unwrap();
        assert_eq!(got, ((2, 1, 4), "float32".to_owned()));
    });
}

#[test]
fn read_only_exports_are_read_only_arrays() {
    Python::attach(|py| {
        // Asked for.
        let img = RgbImage::new(2, 2);
        let t = to_python(py, ImageExport::new(img).read_only(true)).unwrap();
        let a = eval(py, "np.from_dlpack(x)", &t);
        assert!(!eval(py, "x.flags.writeable", &a).extract::<bool>().unwrap());
        // A shared Arc: others could see a consumer's writes.
        let pixels: Arc<[u8]> = vec![1; 12].into();
        let img = ImageBuffer::<Rgb<u8>, _>::from_raw(2, 2, pixels.clone()).unwrap();
        let a = eval(py, "np.from_dlpack(x)", &to_python(py, img).unwrap());
        assert!(!eval(py, "x.flags.writeable", &a).extract::<bool>().unwrap());
        assert_eq!(address(py, &a), pixels.as_ptr() as usize);
    });
}

#[test]
fn torch_reads_exported_images_in_place() {
    Python::attach(|py| {
        let img = ImageBuffer::<Rgba<f32>, Vec<f32>>::from_fn(4, 2, |x, y| {
            Rgba([x as f32, y as f32, 0.0, 1.0])
        });
        let pixels = img.as_ptr() as usize;
        let t = eval(py, "torch.from_dlpack(x)", &to_python(py, img).unwrap());
        let (shape, dtype): (Vec<usize>, String) = eval(py, "(list(x.shape), str(x.dtype))", &t)
            .extract()
            .unwrap();
        assert_eq!((shape, dtype.as_str()), (vec![2, 4, 4], "torch.float32"));
        assert_eq!(address(py, &t), pixels, "zero-copy");
        // The tensor keeps the pixels: the image and the Tensor object are gone.
        let v: Vec<f32> = eval(py, "x[1, 3].tolist()", &t).extract().unwrap();
        assert_eq!(v, [3.0, 1.0, 0.0, 1.0]);
    });
}

#[test]
fn numpy_and_torch_arrays_are_image_views_in_place() {
    Python::attach(|py| {
        let a = make(
            py,
            "x = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)",
        );
        let (ptr, dims, pixel) = with_image::<Rgb<u8>, _>(&a, |img| {
            (
                img.as_ptr() as usize,
                img.dimensions(),
                *img.get_pixel(2, 1),
            )
        })
        .unwrap();
        assert_eq!(ptr, address(py, &a), "zero-copy");
        assert_eq!(dims, (3, 2));
        assert_eq!(pixel, Rgb([15, 16, 17]));

        // Grayscale as NumPy holds it: rank 2.
        let g = make(py, "x = np.full((4, 5), 65535, dtype=np.uint16)");
        let (ptr, value) =
            with_image::<Luma<u16>, _>(&g, |img| (img.as_ptr() as usize, img.get_pixel(4, 3)[0]))
                .unwrap();
        assert_eq!((ptr, value), (address(py, &g), 65535));

        let t = make(py, "x = torch.ones((3, 2, 4), dtype=torch.float32)");
        let ptr = with_image::<Rgba<f32>, _>(&t, |img| img.as_ptr() as usize).unwrap();
        assert_eq!(ptr, address(py, &t), "zero-copy");
    });
}

#[test]
fn owned_images_keep_the_python_memory_alive() {
    let img = Python::attach(|py| {
        let a = make(
            py,
            "x = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)",
        );
        let img = from_python::<Rgb<u8>>(&a).unwrap();
        assert_eq!(img.as_ptr() as usize, address(py, &a), "zero-copy");
        let t = make(
            py,
            "x = torch.arange(6, dtype=torch.float32).reshape(2, 3, 1)",
        );
        let gray = from_python::<Luma<f32>>(&t).unwrap();
        assert_eq!(gray.as_ptr() as usize, address(py, &t), "zero-copy");
        assert_eq!(gray.get_pixel(2, 1), &Luma([5.0]));
        img
        // `a` and `t` are dropped here; the images hold the tensors.
    });
    assert_eq!(img.get_pixel(1, 1), &Rgb([9, 10, 11]));
    // Released from a thread that does not hold the GIL.
    std::thread::spawn(move || drop(img)).join().unwrap();
}

#[test]
fn bad_arrays_are_refused_with_the_typed_error() {
    Python::attach(|py| {
        let refusal = |code: &str| match from_python::<Rgb<u8>>(&make(py, code)) {
            Err(Error::Image(err)) => err,
            Ok(_) => panic!("{code}: accepted"),
            Err(err) => panic!("{code}: {err}"),
        };
        // Wrong dtype: the core's refusal, a TypeError.
        let err = refusal("x = np.zeros((2, 2, 3), dtype=np.float64)");
        assert!(matches!(err, ImageError::Tensor(_)), "{err:?}");
        assert!(PyErr::from(Error::Image(err)).is_instance_of::<PyTypeError>(py));
        // Rank.
        let err = refusal("x = np.zeros(12, dtype=np.uint8)");
        assert_eq!(
            err,
            ImageError::Rank {
                shape: vec![12],
                channels: 3
            }
        );
        // Channels (RGBA for RGB), a TypeError.
        let err = refusal("x = torch.zeros((2, 2, 4), dtype=torch.uint8)");
        assert_eq!(
            err,
            ImageError::Channels {
                expected: 3,
                found: 4
            }
        );
        assert!(PyErr::from(Error::Image(err)).is_instance_of::<PyTypeError>(py));
        // Not compact: channel-first permuted to HWC, and a crop; a BufferError.
        let chw =
            "x = torch.arange(3 * 2 * 4, dtype=torch.uint8).reshape(3, 2, 4).permute(1, 2, 0)";
        let err = refusal(chw);
        assert!(matches!(err, ImageError::NotCompact { .. }), "{err:?}");
        assert!(PyErr::from(Error::Image(err)).is_instance_of::<PyBufferError>(py));
        let crop = "x = np.zeros((4, 4, 3), dtype=np.uint8)[1:3, 1:3]";
        assert!(matches!(refusal(crop), ImageError::NotCompact { .. }));
        // ... which a copy takes, from any strides.
        let copy = copy_from_python::<Rgb<u8>>(&make(py, chw)).unwrap();
        assert_eq!(copy.dimensions(), (4, 2));
        // Pixel (x=1, y=0) of the CHW tensor: channel c at c * 8 + 1.
        assert_eq!(copy.get_pixel(1, 0), &Rgb([1, 9, 17]));
        // The views refuse the same way.
        let wrong = make(py, "x = np.zeros((2, 2, 3), dtype=np.uint16)");
        assert!(matches!(
            with_image::<Rgb<u8>, _>(&wrong, |_| ()),
            Err(Error::Image(ImageError::Tensor(_)))
        ));
        // Not a tensor at all: the import's own TypeError.
        let none = py.None().into_bound(py);
        match from_python::<Rgb<u8>>(&none) {
            Err(Error::Python(err)) => assert!(err.is_instance_of::<PyTypeError>(py)),
            other => panic!("{:?}", other.map(|_| ())),
        }
    });
}
