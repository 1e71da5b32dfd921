//! The runtime written once over a [`Driver`]: context binding, the event
//! pool, stream ordering, pointer queries and host copies, on raw handles
//! ([`Raw`]) for frameworks that hold streams and devices as integers.

use std::marker::PhantomData;
use std::sync::{Mutex, MutexGuard};

use dlpack_core::protocol::DeviceStream;

use crate::driver::{Driver, PointerInfo};
use crate::error::Error;
use crate::stream::{HeldStream, consumer_stream_arg, device_stream};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data are plain caches: a panic elsewhere cannot leave them
    // half-updated in a way that matters, so poisoning is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes a context current on this thread for the guard's lifetime, then
/// restores the previous one (so the caller's current device is unchanged).
#[derive(Debug)]
pub struct Bound<D: Driver> {
    previous: Option<Option<u64>>,
    driver: PhantomData<D>,
}

impl<D: Driver> Bound<D> {
    /// Binds `ctx` (a live context of `D`).
    ///
    /// # Errors
    ///
    /// The failing driver call.
    pub fn new(ctx: u64) -> Result<Self, Error> {
        D::load()?;
        let current = D::current_context()?;
        if current == Some(ctx) {
            return Ok(Bound {
                previous: None,
                driver: PhantomData,
            });
        }
        // SAFETY: `ctx` is live (the caller's contract: a retained primary
        // context, or the context of a live object).
        unsafe { D::set_current_context(Some(ctx)) }?;
        Ok(Bound {
            previous: Some(current),
            driver: PhantomData,
        })
    }

    /// Binds the primary context of device `ordinal`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOrdinal`], [`Error::DriverNotFound`], or the failing
    /// driver call.
    pub fn device(ordinal: i32) -> Result<Self, Error> {
        let ordinal = Error::check_ordinal::<D>(ordinal)?;
        D::load()?;
        Bound::new(D::primary_context(ordinal)?)
    }
}

impl<D: Driver> Drop for Bound<D> {
    fn drop(&mut self) {
        if let Some(previous) = self.previous {
            // SAFETY: `previous` was current a moment ago (or none, which
            // unbinds); restoring it cannot invalidate anything we hold.
            let _ = unsafe { D::set_current_context(previous) };
        }
    }
}

/// Idle events of one context, all created with timing disabled.
#[derive(Debug)]
struct Pool {
    driver: &'static str,
    ctx: u64,
    idle: Vec<u64>,
    created: u64,
}

static POOLS: Mutex<Vec<Pool>> = Mutex::new(Vec::new());

/// What an event pool holds: idle events and how many were ever created.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Events waiting in the pool.
    pub idle: usize,
    /// Events this pool ever created.
    pub created: u64,
}

fn pool_stats_of<D: Driver>(ctx: u64) -> PoolStats {
    lock(&POOLS)
        .iter()
        .find(|p| p.driver == D::NAME && p.ctx == ctx)
        .map_or_else(PoolStats::default, |p| PoolStats {
            idle: p.idle.len(),
            created: p.created,
        })
}

/// An event of `ctx`'s pool (created if the pool is empty). `ctx` must be
/// current.
fn take_event<D: Driver>(ctx: u64) -> Result<u64, Error> {
    {
        let mut pools = lock(&POOLS);
        let i = match pools
            .iter()
            .position(|p| p.driver == D::NAME && p.ctx == ctx)
        {
            Some(i) => i,
            None => {
                pools.push(Pool {
                    driver: D::NAME,
                    ctx,
                    idle: Vec::new(),
                    created: 0,
                });
                pools.len() - 1
            }
        };
        if let Some(event) = pools[i].idle.pop() {
            return Ok(event);
        }
        pools[i].created += 1;
    }
    D::event_create()
}

fn give_back<D: Driver>(ctx: u64, event: u64) {
    let mut pools = lock(&POOLS);
    if let Some(pool) = pools
        .iter_mut()
        .find(|p| p.driver == D::NAME && p.ctx == ctx)
    {
        pool.idle.push(event);
    }
}

/// Makes `consumer` wait for the work submitted so far on `producer`, with
/// one pooled event of `ctx`: one record and one wait, no host wait, no
/// event created once the pool is warm. Nothing when both are the same
/// stream. `ctx` must be current and own both streams (or they are special
/// handles).
///
/// # Errors
///
/// The failing driver call (the event is then destroyed, not pooled).
pub fn order_in_context<D: Driver>(ctx: u64, producer: u64, consumer: u64) -> Result<(), Error> {
    let (producer, consumer) = (D::canonical_stream(producer), D::canonical_stream(consumer));
    if producer == consumer {
        return Ok(());
    }
    let event = take_event::<D>(ctx)?;
    // SAFETY: `event` is a live event of the current context (from the pool,
    // which never destroys events it hands out); the streams are live by the
    // caller's contract.
    let done = unsafe {
        D::event_record(event, producer).and_then(|()| D::stream_wait_event(consumer, event))
    };
    match done {
        // The wait is enqueued: re-recording the event later does not affect
        // it, so the event can serve the next exchange at once.
        Ok(()) => give_back::<D>(ctx, event),
        // SAFETY: the event is ours alone (taken from the pool); destroying
        // it keeps a possibly broken event out of the pool.
        Err(_) => unsafe { D::event_destroy(event) },
    }
    done
}

/// Forgets every pooled event of every driver *without destroying it*: for
/// use after the events were invalidated behind the pool's back (a device
/// reset, or the gpu-sim simulator's reset between tests). The pools
/// refill on the next exchange.
pub fn forget_pooled_events() {
    lock(&POOLS).clear();
}

/// The raw-handle API of driver `D`: streams are integers (with the
/// driver's special values), devices are ordinals. Each call binds the
/// device's primary context for its duration (restoring the thread's
/// previous one) and never blocks the host — except the copies to and from
/// the host, whose caller is the consumer.
///
/// Backend crates name it `dlpack_cuda::Raw` and `dlpack_rocm::Raw`.
#[derive(Copy, Clone, Debug, Default)]
pub struct Raw<D>(pub(crate) PhantomData<D>);

impl<D: Driver> Raw<D> {
    /// Whether the driver library can be loaded (cached).
    pub fn is_present() -> bool {
        D::is_present()
    }

    /// The number of devices.
    ///
    /// # Errors
    ///
    /// [`Error::DriverNotFound`], or the failing call.
    pub fn device_count() -> Result<i32, Error> {
        D::load()?;
        D::device_count()
    }

    /// Makes `consumer` wait for all work submitted so far on `producer`,
    /// both streams of device `ordinal`: one record on the producer and one
    /// wait on the consumer, with a pooled event. Nothing (no driver call
    /// at all) when both name the same stream.
    ///
    /// # Errors
    ///
    /// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing
    /// driver call.
    pub fn order_after(ordinal: i32, producer: u64, consumer: u64) -> Result<(), Error> {
        if D::canonical_stream(producer) == D::canonical_stream(consumer) {
            return Ok(());
        }
        let ordinal = Error::check_ordinal::<D>(ordinal)?;
        D::load()?;
        let ctx = D::primary_context(ordinal)?;
        let _bound = Bound::<D>::new(ctx)?;
        order_in_context::<D>(ctx, producer, consumer)
    }

    /// The device and kind of memory of a device address.
    ///
    /// # Errors
    ///
    /// [`Error::DriverNotFound`], or [`Error::UnknownPointer`].
    pub fn pointer_info(ptr: u64) -> Result<PointerInfo, Error> {
        D::load()?;
        D::pointer_info(ptr)
    }

    /// What the event pool of device `ordinal`'s primary context holds.
    ///
    /// # Errors
    ///
    /// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or a failing
    /// driver call.
    pub fn pool_stats(ordinal: i32) -> Result<PoolStats, Error> {
        let ordinal = Error::check_ordinal::<D>(ordinal)?;
        D::load()?;
        Ok(pool_stats_of::<D>(D::primary_context(ordinal)?))
    }

    /// Copies `dst.len()` bytes at device address `src` (memory of device
    /// `ordinal`) to `dst`, enqueued on `producer` (so it is ordered after
    /// the producer's pending work), then waits for the copy. This blocks
    /// the host — the host is the consumer here.
    ///
    /// # Safety
    ///
    /// `src..src + dst.len()` must be live memory the driver can read, and
    /// `producer` a live stream of that device (or a special stream).
    ///
    /// # Errors
    ///
    /// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing
    /// driver call.
    pub unsafe fn copy_to_host(
        ordinal: i32,
        src: u64,
        dst: &mut [u8],
        producer: u64,
    ) -> Result<(), Error> {
        let _bound = Bound::<D>::device(ordinal)?;
        // SAFETY: the caller's contract; the device's context is current.
        unsafe { copy_to_host_bound::<D>(dst, src, producer) }
    }

    /// Blocks the host until the work submitted so far on `stream` of device
    /// `ordinal` is done: what a host read of page-locked or managed memory
    /// needs first when that memory has pending device work on `stream`.
    ///
    /// # Safety
    ///
    /// `stream` is a live stream of device `ordinal` (or a special stream).
    ///
    /// # Errors
    ///
    /// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing
    /// call.
    pub unsafe fn host_wait(ordinal: i32, stream: u64) -> Result<(), Error> {
        let _bound = Bound::<D>::device(ordinal)?;
        // SAFETY: the caller's contract; the device's context is current.
        unsafe { D::stream_synchronize(stream) }
    }

    /// Copies `src` to device address `dst`, enqueued on `stream`, then
    /// waits for the copy (`src` may be freed on return): blocks the host.
    ///
    /// # Safety
    ///
    /// `dst..dst + src.len()` is live device memory of device `ordinal`,
    /// and `stream` a live stream of it (or a special stream).
    ///
    /// # Errors
    ///
    /// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing
    /// call.
    pub unsafe fn copy_from_host(
        ordinal: i32,
        dst: u64,
        src: &[u8],
        stream: u64,
    ) -> Result<(), Error> {
        if src.is_empty() {
            return Ok(());
        }
        let _bound = Bound::<D>::device(ordinal)?;
        // SAFETY: the caller's contract; `src` outlives the copy (waited
        // for below).
        unsafe {
            D::copy_from_host_async(dst, src, stream)?;
            D::stream_synchronize(stream)
        }
    }

    /// Creates a non-blocking stream on device `ordinal`; destroy it with
    /// [`stream_destroy`](Raw::stream_destroy).
    ///
    /// # Errors
    ///
    /// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing
    /// call.
    pub fn stream_create(ordinal: i32) -> Result<u64, Error> {
        let _bound = Bound::<D>::device(ordinal)?;
        D::stream_create()
    }

    /// Destroys a stream made by [`stream_create`](Raw::stream_create).
    ///
    /// # Safety
    ///
    /// `stream` is a live stream of device `ordinal` that nothing uses
    /// afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing
    /// call.
    pub unsafe fn stream_destroy(ordinal: i32, stream: u64) -> Result<(), Error> {
        let _bound = Bound::<D>::device(ordinal)?;
        // SAFETY: the caller's contract.
        unsafe { D::stream_destroy(stream) }
    }

    /// Allocates `len` bytes (at least one) of device memory on device
    /// `ordinal`; free it with [`free`](Raw::free).
    ///
    /// # Errors
    ///
    /// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing
    /// call.
    pub fn alloc(ordinal: i32, len: usize) -> Result<u64, Error> {
        let _bound = Bound::<D>::device(ordinal)?;
        D::alloc(len.max(1))
    }

    /// Frees `ptr` (from [`alloc`](Raw::alloc)) once the work submitted so
    /// far on `stream` is done: stream-ordered where the driver can
    /// (`cuMemFreeAsync`), after a host wait for `stream` otherwise
    /// (`hipFree`).
    ///
    /// # Safety
    ///
    /// `ptr` came from [`alloc`](Raw::alloc) on this device and is freed
    /// once; every use of it is ordered before the current end of `stream`.
    ///
    /// # Errors
    ///
    /// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing
    /// call.
    pub unsafe fn free(ordinal: i32, ptr: u64, stream: u64) -> Result<(), Error> {
        let _bound = Bound::<D>::device(ordinal)?;
        // SAFETY: the caller's contract.
        unsafe { D::free(ptr, stream) }
    }

    /// Sets `len` bytes at `ptr` to `value`, enqueued on `stream`.
    ///
    /// # Safety
    ///
    /// `ptr..ptr + len` is live device memory of device `ordinal`, and
    /// `stream` a live stream of it (or a special stream).
    ///
    /// # Errors
    ///
    /// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing
    /// call.
    pub unsafe fn memset_async(
        ordinal: i32,
        ptr: u64,
        value: u8,
        len: usize,
        stream: u64,
    ) -> Result<(), Error> {
        let _bound = Bound::<D>::device(ordinal)?;
        // SAFETY: the caller's contract; the context is current.
        unsafe { D::memset_async(ptr, value, len, stream) }
    }

    /// A stream value of this driver held as the calling thread means it.
    pub fn held(raw: u64) -> HeldStream {
        HeldStream::received::<D>(raw)
    }

    /// The stream a raw handle is, as the core names it.
    pub fn device_stream(raw: u64) -> DeviceStream {
        device_stream::<D>(raw)
    }

    /// The value a consumer working on `raw` passes as
    /// `__dlpack__(stream=...)` (see [`consumer_stream_arg`]).
    pub fn consumer_stream_arg(raw: u64) -> Option<i64> {
        consumer_stream_arg::<D>(raw)
    }
}

/// Copies `dst.len()` bytes at `src` to `dst` on `stream` and waits: the
/// one host-blocking operation of an export. The right context must be
/// current.
///
/// # Safety
///
/// `src..src + dst.len()` is live memory the driver can read, and the
/// stream is live.
pub(crate) unsafe fn copy_to_host_bound<D: Driver>(
    dst: &mut [u8],
    src: u64,
    stream: u64,
) -> Result<(), Error> {
    if dst.is_empty() {
        return Ok(());
    }
    // SAFETY: the caller's contract; the host waits for the copy before
    // `dst` is read or freed.
    unsafe {
        D::copy_to_host_async(dst, src, stream)?;
        D::stream_synchronize(stream)
    }
}
