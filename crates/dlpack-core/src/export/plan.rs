//! Carrying out a producer's [`DlpackPlan`], written once: [`fulfil`] over
//! a [`PlanSource`], the little a source of tensor memory must say.

use crate::error::Error;
use crate::export::{Export, TensorOwner};
use crate::ffi::{DLDevice, DLPACK_FLAG_BITMASK_IS_COPIED, DLPACK_FLAG_BITMASK_READ_ONLY};
use crate::managed::AnyManagedTensor;
use crate::protocol::{Abi, DlpackPlan, StreamRequest, Transfer};

/// Tensor memory a producer can export as a [`DlpackPlan`] asks: what to
/// share and how to order the consumer after its pending work, how to copy
/// its bytes to the host, and (optionally) how to copy them on its own
/// device. [`fulfil`] decides which.
///
/// The exports a source returns carry its shape, strides, dtype and offset;
/// [`fulfil`] adds the plan's flags and builds the ABI the plan names.
pub trait PlanSource<'a>: Sized {
    /// The source's error; export errors of the core convert into it.
    type Error: From<Error>;
    /// The owner of a shared export (the memory itself, or a handle on it).
    type Shared: TensorOwner;
    /// The owner of a host copy.
    type Host: TensorOwner;

    /// The device the data lives on (the plan's source).
    fn device(&self) -> DLDevice;

    /// Orders the consumer's stream `request` (decoded by
    /// [`plan_dlpack`](crate::protocol::plan_dlpack)) after the work
    /// pending on the data, before it is shared.
    ///
    /// # Errors
    ///
    /// The device's failure.
    fn order_consumer(&self, request: StreamRequest) -> Result<(), Self::Error>;

    /// Blocks until the work pending on the data is done, when the host is
    /// the consumer: host-accessible memory (managed, page-locked) shared
    /// as `(kDLCPU, 0)` or copied by the host. Memory that only the host
    /// writes has nothing to wait for.
    ///
    /// # Errors
    ///
    /// The device's failure.
    fn order_host(&self) -> Result<(), Self::Error>;

    /// The export sharing the data (no copy), described on `device` (the
    /// data's own, or `(kDLCPU, 0)` for host-accessible memory).
    ///
    /// # Errors
    ///
    /// When the export cannot be described.
    fn share(self, device: DLDevice) -> Result<Export<'a, Self::Shared>, Self::Error>;

    /// A copy of the data in host memory, described on `device` (`(kDLCPU,
    /// 0)`, or the data's own device when the host can address it); the
    /// host is the consumer, so the copy is complete when it returns.
    /// [`fulfil`] flags it `IS_COPIED`.
    ///
    /// # Errors
    ///
    /// When the data cannot be copied to the host.
    fn copy_to_host(self, device: DLDevice) -> Result<Export<'a, Self::Host>, Self::Error>;

    /// A copy of the data on its own device (`copy=True`), which is then
    /// shared. The default refuses with [`refuse`](PlanSource::refuse).
    ///
    /// # Errors
    ///
    /// The device's failure, or the refusal.
    fn copy_on_device(self) -> Result<Self, Self::Error> {
        let device = self.device();
        Err(self.refuse(device))
    }

    /// The error for a plan whose target `device` this source cannot
    /// provide.
    fn refuse(&self, device: DLDevice) -> Self::Error;
}

/// Carries out `plan` (from [`plan_dlpack`](crate::protocol::plan_dlpack))
/// for `source`:
///
/// - share on the data's device: the consumer's stream is ordered first
///   ([`order_consumer`](PlanSource::order_consumer)), then the export gets
///   the plan's `READ_ONLY` and `IS_COPIED` flags; host-accessible memory
///   shared as `(kDLCPU, 0)` has the host for its consumer, which waits
///   first ([`order_host`](PlanSource::order_host));
/// - copy to `(kDLCPU, 0)`, or on a host-accessible device:
///   [`copy_to_host`](PlanSource::copy_to_host), flagged `IS_COPIED` (for
///   host-accessible memory the host reads it, after
///   [`order_host`](PlanSource::order_host));
/// - copy on the data's device: [`copy_on_device`](PlanSource::copy_on_device),
///   then shared as above;
/// - any other target: [`refuse`](PlanSource::refuse).
///
/// # Errors
///
/// The source's errors, and the core's export errors.
///
/// ```
/// use dlpack_core::export::{Export, PlanSource, fulfil};
/// use dlpack_core::ffi::DLDevice;
/// use dlpack_core::protocol::{plan_dlpack, DlpackRequest, StreamRequest};
/// use dlpack_core::Error;
///
/// /// Host memory: shared as it is, copied by cloning.
/// struct Host<'a>(&'a [i64], Vec<f32>);
///
/// impl<'a> PlanSource<'a> for Host<'a> {
///     type Error = Error;
///     type Shared = Vec<f32>;
///     type Host = Vec<f32>;
///     fn device(&self) -> DLDevice {
///         DLDevice::cpu()
///     }
///     fn order_consumer(&self, _: StreamRequest) -> Result<(), Error> {
///         Ok(()) // no streams on the host
///     }
///     fn order_host(&self) -> Result<(), Error> {
///         Ok(()) // only the host writes it
///     }
///     fn share(self, _: DLDevice) -> Result<Export<'a, Vec<f32>>, Error> {
///         Ok(Export::new(self.1).shape(self.0))
///     }
///     fn copy_to_host(self, _: DLDevice) -> Result<Export<'a, Vec<f32>>, Error> {
///         Ok(Export::new(self.1.clone()).shape(self.0))
///     }
///     fn refuse(&self, to: DLDevice) -> Error {
///         Error::UnsupportedTargetDevice { from: self.device(), to }
///     }
/// }
///
/// let req = DlpackRequest { max_version: Some((1, 3)), copy: Some(true), ..Default::default() };
/// let plan = plan_dlpack(DLDevice::cpu(), false, &req)?;
/// let t = fulfil(Host(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]), &plan)?;
/// assert!(t.flags().is_copied());
/// assert_eq!(t.view().shape(), &[2, 2]);
/// # Ok::<(), Error>(())
/// ```
#[inline]
pub fn fulfil<'a, S: PlanSource<'a>>(
    source: S,
    plan: &DlpackPlan,
) -> Result<AnyManagedTensor, S::Error> {
    let from = source.device();
    let host = from.device_type.is_host_accessible();
    // One place builds a shared export, whichever way the consumer is
    // ordered: the builder is inlined, and written out once.
    let (source, device) = match plan.transfer {
        Transfer::Share { device } if device == from => {
            source.order_consumer(plan.stream)?;
            (source, device)
        }
        Transfer::Share { device } if host && device == DLDevice::cpu() => {
            source.order_host()?;
            (source, device)
        }
        Transfer::Copy { device } if device == DLDevice::cpu() || (host && device == from) => {
            return host_copy(source, device, host, plan.abi);
        }
        Transfer::Copy { device } if device == from => {
            let copy = source.copy_on_device()?;
            copy.order_consumer(plan.stream)?;
            (copy, device)
        }
        other => return Err(source.refuse(other.device())),
    };
    share(source, device, plan)
}

/// A copy by the host, described on `device`, after the pending work when
/// the host reads the data in place (`host`).
fn host_copy<'a, S: PlanSource<'a>>(
    source: S,
    device: DLDevice,
    host: bool,
    abi: Abi,
) -> Result<AnyManagedTensor, S::Error> {
    if host {
        source.order_host()?;
    }
    let export = source.copy_to_host(device)?.copied(true);
    Ok(build(export, abi)?)
}

#[inline]
fn share<'a, S: PlanSource<'a>>(
    source: S,
    device: DLDevice,
    plan: &DlpackPlan,
) -> Result<AnyManagedTensor, S::Error> {
    let export = source
        .share(device)?
        .read_only(plan.flags & DLPACK_FLAG_BITMASK_READ_ONLY != 0)
        .copied(plan.flags & DLPACK_FLAG_BITMASK_IS_COPIED != 0);
    Ok(build(export, plan.abi)?)
}

/// Builds `export` as a managed tensor of `abi`.
#[inline]
fn build<O: TensorOwner>(export: Export<'_, O>, abi: Abi) -> Result<AnyManagedTensor, Error> {
    Ok(match abi {
        Abi::Versioned => export.versioned()?.into(),
        Abi::Legacy => export.legacy()?.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::DLDeviceType;
    use crate::protocol::{DlpackRequest, plan_dlpack};
    use alloc::vec;
    use alloc::vec::Vec;
    use core::cell::RefCell;

    /// Host memory that records what `fulfil` asked of it.
    struct Probe<'a> {
        device: DLDevice,
        data: Vec<u8>,
        log: &'a RefCell<Vec<&'static str>>,
    }

    impl<'a> PlanSource<'a> for Probe<'a> {
        type Error = Error;
        type Shared = Vec<u8>;
        type Host = Vec<u8>;
        fn device(&self) -> DLDevice {
            self.device
        }
        fn order_consumer(&self, request: StreamRequest) -> Result<(), Error> {
            if let StreamRequest::Sync(_) = request {
                self.log.borrow_mut().push("order");
            }
            Ok(())
        }
        fn order_host(&self) -> Result<(), Error> {
            self.log.borrow_mut().push("host wait");
            Ok(())
        }
        fn share(self, _: DLDevice) -> Result<Export<'a, Vec<u8>>, Error> {
            self.log.borrow_mut().push("share");
            Ok(Export::new(self.data))
        }
        fn copy_to_host(self, _: DLDevice) -> Result<Export<'a, Vec<u8>>, Error> {
            self.log.borrow_mut().push("host");
            Ok(Export::new(self.data.clone()))
        }
        fn refuse(&self, to: DLDevice) -> Error {
            Error::UnsupportedTargetDevice {
                from: self.device,
                to,
            }
        }
    }

    fn run(
        device: DLDevice,
        req: DlpackRequest,
    ) -> (Result<AnyManagedTensor, Error>, Vec<&'static str>) {
        let log = RefCell::new(Vec::new());
        let plan = plan_dlpack(device, false, &req).unwrap();
        let probe = Probe {
            device,
            data: vec![1, 2, 3],
            log: &log,
        };
        let out = fulfil(probe, &plan);
        (out, log.into_inner())
    }

    const V: Option<(i64, i64)> = Some((1, 3));

    #[test]
    fn shares_after_ordering_the_consumer() {
        let cuda = DLDevice::new(DLDeviceType::kDLCUDA, 0);
        let req = DlpackRequest {
            max_version: V,
            stream: Some(7),
            ..Default::default()
        };
        let (t, log) = run(cuda, req);
        let t = t.unwrap();
        assert_eq!(log, ["order", "share"]);
        assert!(!t.flags().is_copied());
    }

    #[test]
    fn copies_to_the_host_with_is_copied() {
        let cuda = DLDevice::new(DLDeviceType::kDLCUDA, 0);
        let req = DlpackRequest {
            max_version: V,
            dl_device: Some(DLDevice::cpu()),
            ..Default::default()
        };
        let (t, log) = run(cuda, req);
        assert_eq!(log, ["host"]);
        assert!(t.unwrap().flags().is_copied());
        // copy=True on the host is a host copy too.
        let req = DlpackRequest {
            max_version: V,
            copy: Some(true),
            ..Default::default()
        };
        let (t, log) = run(DLDevice::cpu(), req);
        assert_eq!(log, ["host wait", "host"]);
        assert_eq!(t.unwrap().view().as_slice::<u8>().unwrap(), &[1, 2, 3]);
    }

    /// Memory that the host and a device both reach may have device work
    /// pending: when the host is the consumer (shared as CPU memory, or
    /// copied by the host) it waits for that work first; shared on its own
    /// device, the consumer's stream is ordered instead.
    #[test]
    fn the_host_waits_before_reading_managed_memory() {
        let managed = DLDevice::new(DLDeviceType::kDLCUDAManaged, 0);
        let as_cpu = DlpackRequest {
            max_version: V,
            dl_device: Some(DLDevice::cpu()),
            ..Default::default()
        };
        let (t, log) = run(managed, as_cpu);
        assert_eq!(log, ["host wait", "share"]);
        assert!(t.is_ok());
        let copied = DlpackRequest {
            copy: Some(true),
            ..as_cpu
        };
        let (t, log) = run(managed, copied);
        assert_eq!(log, ["host wait", "host"]);
        assert!(t.unwrap().flags().is_copied());
        let on_device = DlpackRequest {
            max_version: V,
            stream: Some(7),
            ..Default::default()
        };
        let (t, log) = run(managed, on_device);
        assert_eq!(log, ["order", "share"]);
        assert!(t.is_ok());
    }

    #[test]
    fn a_copy_on_the_device_is_refused_by_default() {
        let cuda = DLDevice::new(DLDeviceType::kDLCUDA, 0);
        let req = DlpackRequest {
            max_version: V,
            copy: Some(true),
            ..Default::default()
        };
        let (t, log) = run(cuda, req);
        assert!(log.is_empty());
        assert_eq!(
            t.unwrap_err(),
            Error::UnsupportedTargetDevice {
                from: cuda,
                to: cuda
            }
        );
    }
}
