//! [`CudaSync`]: the CUDA implementation of the core's
//! [`StreamSync`] seam, and the consumer's choice of `stream`.

use cudarc::driver::CudaStream;
use dlpack_core::device::StreamKind;
use dlpack_core::ffi::DLDevice;
use dlpack_core::protocol::DeviceStream;
use dlpack_core::sync::StreamSync;

use crate::driver;
use crate::error::Error;
use crate::raw;

/// Orders CUDA streams with pooled events: one `cuEventRecord` on the
/// producer's stream and one `cuStreamWaitEvent` on the consumer's per
/// exchange, nothing for the same stream (or `-1`, which the core's
/// [`plan_sync`](dlpack_core::sync::plan_sync) turns into
/// [`SyncAction::Nothing`](dlpack_core::sync::SyncAction::Nothing)). The
/// host never waits.
///
/// ```no_run
/// use dlpack_core::ffi::DLDevice;
/// use dlpack_core::protocol::{decode_stream, DeviceStream};
/// use dlpack_core::sync::{plan_sync, StreamSync};
/// use dlpack_cuda::CudaSync;
///
/// // The consumer called __dlpack__(stream=2) on data whose pending work is on 0x1000.
/// let device = DLDevice::cuda(0);
/// let request = decode_stream(device.device_type, Some(2))?;
/// let action = plan_sync(request, Some(DeviceStream::Handle(0x1000)));
/// CudaSync.apply(device, action)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct CudaSync;

impl StreamSync for CudaSync {
    type Error = Error;

    fn order_after(
        &self,
        device: DLDevice,
        producer: DeviceStream,
        consumer: DeviceStream,
    ) -> Result<(), Error> {
        if device.device_type.stream_kind() != StreamKind::Cuda {
            return Err(Error::UnsupportedDevice { device });
        }
        raw::order_after(device.device_id, producer.as_raw(), consumer.as_raw())
    }
}

impl CudaSync {
    /// Makes cudarc stream `consumer` wait for the work submitted so far on
    /// `producer`, with a pooled event of the producer's context (no event is
    /// created once the pool is warm). Nothing when they are the same
    /// stream.
    ///
    /// # Errors
    ///
    /// The failing driver call.
    pub fn order_streams(&self, producer: &CudaStream, consumer: &CudaStream) -> Result<(), Error> {
        let (p, c) = (
            raw::canonical_stream(driver::stream_raw(producer.cu_stream())),
            raw::canonical_stream(driver::stream_raw(consumer.cu_stream())),
        );
        if p == c {
            return Ok(());
        }
        let ctx = producer.context().cu_ctx();
        let _bound = driver::bind(ctx)?;
        driver::order_in_context(ctx, driver::stream_handle(p), driver::stream_handle(c))
    }
}

/// The stream a cudarc stream is, as the core names it: the NULL stream is
/// the legacy default stream, `0x2` the per-thread default stream.
pub fn device_stream(stream: &CudaStream) -> DeviceStream {
    let raw = driver::stream_raw(stream.cu_stream());
    DeviceStream::from_raw(StreamKind::Cuda, raw).unwrap_or(DeviceStream::CudaLegacyDefault)
}

/// The value a consumer working on `stream` passes to a producer's
/// `__dlpack__(stream=...)`: the stream's handle, `1` for the NULL stream
/// (never `0`), `2` for the per-thread default stream.
///
/// ```no_run
/// let ctx = cudarc::driver::CudaContext::new(0)?;
/// assert_eq!(dlpack_cuda::consumer_stream_arg(&ctx.default_stream()), 1);
/// assert_eq!(dlpack_cuda::consumer_stream_arg(&ctx.per_thread_stream()), 2);
/// # Ok::<(), cudarc::driver::DriverError>(())
/// ```
pub fn consumer_stream_arg(stream: &CudaStream) -> i64 {
    raw::consumer_stream_arg(driver::stream_raw(stream.cu_stream()))
}
