//! The other process of cross-language tests: a Rust process that publishes
//! a tensor, or opens one published elsewhere (e.g. by Python's
//! `dlpack.shared_memory`).
//!
//! - `shm_peer publish [ro]`: publishes a 2 x 3 float32 tensor
//!   (`0, 1.5, 3, ...`, read-only with `ro`), prints `HANDLE <handle>`,
//!   waits for a line on stdin (or its end), exits without unlinking.
//! - `shm_peer open <handle>`: opens the handle and prints `DTYPE
//!   code,bits,lanes`, `SHAPE ...`, `STRIDES ...`, `READONLY 0|1` and
//!   `BYTES <hex>` (the elements' bytes in row-major order); with `open
//!   <handle> write <byte>` it first writes that byte into every byte of
//!   every element (a writable segment only).
//!
//! Any failure exits with status 2 after printing `ERROR <message>`.

use std::io::{BufRead, Write};

use dlpack_core::dtype::Storage;
use dlpack_core::export::Export;
use dlpack_shm::{Handle, Options, Segment, open};

fn main() {
    if let Err(e) = run() {
        println!("ERROR {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("publish") => {
            let data: Vec<f32> = (0..6).map(|i| i as f32 * 1.5).collect();
            let src = Export::new(data).shape(&[2, 3]).versioned()?;
            let options = Options {
                read_only: args.get(1).is_some_and(|a| a == "ro"),
                ..Options::default()
            };
            let seg = Segment::publish(&src.view(), &options)?;
            println!("HANDLE {}", seg.handle());
            std::io::stdout().flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            Ok(())
        }
        Some("open") => {
            let handle = Handle::parse(args.get(1).ok_or("open needs a handle")?)?;
            let t = open(&handle)?;
            let v = t.view();
            let Storage::Bytes(size) = v.storage() else {
                return Err("packed sub-byte elements are not printed".into());
            };
            let size = size as usize;
            let shape = v.shape().to_vec();
            let strides: Vec<i64> = v.strides().collect();
            let n: i64 = shape.iter().product();
            let fill = match (args.get(2).map(String::as_str), args.get(3)) {
                (Some("write"), Some(b)) => Some(b.parse::<u8>()?),
                _ => None,
            };
            if fill.is_some() && t.flags().is_read_only() {
                return Err("the segment is read-only".into());
            }
            let mut hex = String::new();
            for flat in 0..n {
                let (mut rem, mut off) = (flat, 0i64);
                for axis in (0..shape.len()).rev() {
                    off += (rem % shape[axis]) * strides[axis];
                    rem /= shape[axis];
                }
                // SAFETY: an element of a validated host tensor (writable
                // when `fill` is set, checked above).
                let p = unsafe { v.data_ptr().offset(off as isize * size as isize) };
                for i in 0..size {
                    // SAFETY: byte i of that element.
                    unsafe {
                        if let Some(b) = fill {
                            p.add(i).write(b);
                        }
                        hex.push_str(&format!("{:02x}", p.add(i).read()));
                    }
                }
            }
            let d = v.dtype();
            println!("DTYPE {},{},{}", d.code, d.bits, d.lanes);
            println!("SHAPE {shape:?}");
            println!("STRIDES {strides:?}");
            println!("READONLY {}", u8::from(t.flags().is_read_only()));
            println!("BYTES {hex}");
            Ok(())
        }
        _ => Err("usage: shm_peer publish [ro] | open <handle> [write <byte>]".into()),
    }
}
