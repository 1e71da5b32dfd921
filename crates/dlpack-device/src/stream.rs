//! [`HeldStream`]: a raw stream value resolved on the thread that received
//! it.

use dlpack_core::protocol::{DeviceStream, decode_stream};

use crate::driver::Driver;

/// A stream value resolved on the thread that received it.
///
/// `2` (the per-thread default stream) names the stream of the thread that
/// passes it to the driver, so a value kept for later (the consumer's
/// stream an exported tensor's free must wait for) means another stream
/// once a deleter runs it on another thread. A `HeldStream` keeps which
/// thread's stream was meant, and [`here`](HeldStream::here) names, on
/// whatever thread asks, a stream whose end covers every piece of work
/// submitted to it so far: the stream itself, or — for another thread's
/// per-thread default stream, which no handle names from there — the
/// driver's covering stream ([`Driver::COVERING_STREAM`]: CUDA's legacy
/// default stream, HIP's null stream), which waits for every blocking
/// stream of its context before anything enqueued on it. Handles of
/// created streams mean the same on every thread.
///
/// (`dlpack_cuda::HeldStream` shows it with CUDA's values.)
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HeldStream {
    raw: u64,
    covering: u64,
    per_thread_of: Option<std::thread::ThreadId>,
}

impl HeldStream {
    /// Resolves `raw` (a stream of driver `D`, canonical spelling taken) on
    /// the calling thread, the one whose per-thread stream `2` names.
    pub fn received<D: Driver>(raw: u64) -> Self {
        let raw = D::canonical_stream(raw);
        HeldStream {
            raw,
            covering: D::COVERING_STREAM,
            per_thread_of: (raw == D::PER_THREAD_STREAM).then(|| std::thread::current().id()),
        }
    }

    /// The value as it was received (canonical).
    pub fn as_received(&self) -> u64 {
        self.raw
    }

    /// The handle that, on the calling thread, covers all work submitted
    /// to the held stream so far (see the type's docs).
    pub fn here(&self) -> u64 {
        match self.per_thread_of {
            Some(thread) if thread != std::thread::current().id() => self.covering,
            _ => self.raw,
        }
    }
}

/// The stream a raw handle of driver `D` is, as the core names it.
pub fn device_stream<D: Driver>(raw: u64) -> DeviceStream {
    let raw = D::canonical_stream(raw);
    DeviceStream::from_raw(D::STREAM_KIND, raw).unwrap_or(DeviceStream::Handle(raw))
}

/// The value a consumer working on stream `raw` of driver `D` passes to a
/// producer's `__dlpack__(stream=...)`: the handle, with CUDA's NULL stream
/// spelled `1` (never `0`); `None` when the standard allows no value for
/// that stream (ROCm's `1` and `2`: such a consumer must pass another
/// stream or synchronise itself).
pub fn consumer_stream_arg<D: Driver>(raw: u64) -> Option<i64> {
    let arg = device_stream::<D>(raw).as_dlpack_arg();
    decode_stream(D::DEVICE_TYPES.device, Some(arg)).ok()?;
    Some(arg)
}
