//! The allocation table and the per-allocation access history (the "shadow").
//!
//! Device memory is ordinary heap memory behind *fake* device addresses: device `d` hands out
//! addresses from `DEVICE_ADDRESS_BASE + (d << 40)` upwards, 256-byte aligned, with a 256-byte
//! unmapped guard gap after every allocation so that an off-by-one never lands in a neighbour.
//! The base is above 2^48, so a fake device address can never equal a real host pointer of a
//! user-space process (x86-64 and aarch64 user space ends below 2^48 unless a program asks the
//! kernel for 5-level addresses explicitly). Pinned host (`cuMemAllocHost`, `hipHostMalloc`) and
//! managed (`cuMemAllocManaged`, `hipMallocManaged`) allocations are real host pointers, so their
//! address *is* the host address.
//!
//! Freed device ranges are remembered (a bounded list of tombstones) so that a later access
//! is reported as a use-after-free rather than as an unknown address. Device addresses are never
//! reused, so a tombstone stays correct for as long as it is kept.
//!
//! The shadow keeps, per byte range, the last write and the reads since it (at most one per
//! timeline, as in FastTrack). Adjacent ranges with the same history are merged, so repeated
//! traffic over the same buffers does not grow the history.

use std::alloc::Layout;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::clock::{Epoch, VectorClock};

/// Lowest fake device address (device 0); device `d` starts `d << 40` higher.
pub const DEVICE_ADDRESS_BASE: u64 = 0x0002_0000_0000_0000;
/// Alignment of every allocation, as the real drivers guarantee (at least) 256 bytes.
pub const ALIGNMENT: usize = 256;
/// Memory the simulator pretends each device has (16 GiB).
pub const DEVICE_MEMORY_BYTES: u64 = 16 << 30;
/// How many freed ranges are remembered for use-after-free reports.
const TOMBSTONE_LIMIT: usize = 4096;

/// What kind of memory an allocation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemKind {
    /// Device memory behind a fake address.
    Device,
    /// Page-locked host memory (a real host pointer).
    Pinned,
    /// Managed (unified) memory (a real host pointer, accessible from host and device).
    Managed,
}

impl MemKind {
    /// A short name for reports.
    pub fn label(self) -> &'static str {
        match self {
            MemKind::Device => "device",
            MemKind::Pinned => "pinned host",
            MemKind::Managed => "managed",
        }
    }
}

/// One operation (an enqueued call, a host access, a host-side free) as reports name it.
#[derive(Debug)]
pub struct OpInfo {
    /// Unique, increasing operation id.
    pub id: u64,
    /// e.g. `cuMemsetD8Async#17 on stream 3 (device 0)`.
    pub name: String,
}

/// Shared handle to an operation's description.
pub type OpRef = Arc<OpInfo>;

/// How an operation touches bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    /// Reads the bytes.
    Read,
    /// Writes the bytes.
    Write,
    /// Frees them (conflicts like a write).
    Free,
}

impl AccessKind {
    fn label(self) -> &'static str {
        match self {
            AccessKind::Read => "read",
            AccessKind::Write => "write",
            AccessKind::Free => "free",
        }
    }
}

/// One recorded access.
#[derive(Debug, Clone)]
pub struct Access {
    /// When (on which timeline) it happened.
    pub epoch: Epoch,
    /// Which operation did it.
    pub op: OpRef,
    /// Read, write or free.
    pub kind: AccessKind,
}

impl Access {
    fn same_as(&self, other: &Access) -> bool {
        self.op.id == other.op.id && self.epoch == other.epoch && self.kind == other.kind
    }
}

/// Two accesses to the same bytes, at least one a write, not ordered by happens-before.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// The earlier (recorded) access.
    pub earlier: Access,
    /// The new access.
    pub later: Access,
    /// Offsets inside the allocation, `[start, end)`.
    pub start: u64,
    /// End offset (exclusive).
    pub end: u64,
}

impl Conflict {
    /// Whether a free takes part (a use-after-free hazard rather than a plain data race).
    pub fn involves_free(&self) -> bool {
        self.earlier.kind == AccessKind::Free || self.later.kind == AccessKind::Free
    }

    /// A one-line description naming both operations, given the allocation's base address.
    pub fn describe(&self, alloc: &AllocationSummary) -> String {
        let what = if self.involves_free() {
            "USE-AFTER-FREE HAZARD"
        } else {
            "RACE"
        };
        format!(
            "{what}: {} by {} is not ordered before {} by {}; bytes [{:#x}, {:#x}) (offsets {}..{} of {})",
            self.earlier.kind.label(),
            self.earlier.op.name,
            self.later.kind.label(),
            self.later.op.name,
            alloc.base + self.start,
            alloc.base + self.end,
            self.start,
            self.end,
            alloc,
        )
    }
}

#[derive(Debug, Clone, Default)]
struct Segment {
    end: u64,
    write: Option<Access>,
    /// At most one read per slot, sorted by slot.
    reads: Vec<Access>,
}

impl Segment {
    fn same_history(&self, other: &Segment) -> bool {
        let writes_equal = match (&self.write, &other.write) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same_as(b),
            _ => false,
        };
        writes_equal
            && self.reads.len() == other.reads.len()
            && self
                .reads
                .iter()
                .zip(&other.reads)
                .all(|(a, b)| a.same_as(b))
    }
}

/// Access history of one allocation: non-overlapping segments keyed by start offset.
#[derive(Debug, Default)]
pub struct Shadow {
    segments: BTreeMap<u64, Segment>,
}

impl Shadow {
    /// Number of segments kept (for tests of boundedness).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Splits the segment that strictly contains `at`, if any.
    fn split_at(&mut self, at: u64) {
        let Some((_, segment)) = self.segments.range_mut(..at).next_back() else {
            return;
        };
        if segment.end <= at {
            return;
        }
        // The tail keeps the original end and the same history.
        let tail = segment.clone();
        segment.end = at;
        self.segments.insert(at, tail);
    }

    /// Makes `[start, end)` covered by segments whose boundaries include `start` and `end`.
    fn cover(&mut self, start: u64, end: u64) {
        self.split_at(start);
        self.split_at(end);
        let mut cursor = start;
        let mut gaps = Vec::new();
        for (&seg_start, segment) in self.segments.range(start..end) {
            if seg_start > cursor {
                gaps.push((cursor, seg_start));
            }
            cursor = segment.end;
        }
        if cursor < end {
            gaps.push((cursor, end));
        }
        for (gap_start, gap_end) in gaps {
            self.segments.insert(
                gap_start,
                Segment {
                    end: gap_end,
                    ..Segment::default()
                },
            );
        }
    }

    /// Merges neighbouring segments with identical histories around `[start, end)`.
    fn coalesce(&mut self, start: u64, end: u64) {
        let first = self
            .segments
            .range(..start)
            .next_back()
            .map_or(start, |(&s, _)| s);
        let keys: Vec<u64> = self.segments.range(first..=end).map(|(&k, _)| k).collect();
        let mut current: Option<u64> = None;
        for key in keys {
            match current {
                Some(cur) => {
                    let mergeable = {
                        let a = &self.segments[&cur];
                        let b = &self.segments[&key];
                        a.end == key && a.same_history(b)
                    };
                    if mergeable {
                        let removed = self.segments.remove(&key).map(|s| s.end);
                        if let (Some(new_end), Some(seg)) = (removed, self.segments.get_mut(&cur)) {
                            seg.end = new_end;
                        }
                    } else {
                        current = Some(key);
                    }
                }
                None => current = Some(key),
            }
        }
    }

    /// Checks `access` to offsets `[start, end)` against the history and records it.
    ///
    /// `clock` is the vector clock of the accessing operation. Returns the conflicts found, at
    /// most one per earlier operation (its byte range is the union of the overlapping parts).
    pub fn access(
        &mut self,
        start: u64,
        end: u64,
        access: &Access,
        clock: &VectorClock,
    ) -> Vec<Conflict> {
        let mut conflicts: Vec<Conflict> = Vec::new();
        if start >= end {
            return conflicts;
        }
        self.cover(start, end);
        let mut note = |earlier: &Access, seg_start: u64, seg_end: u64| {
            if earlier.op.id == access.op.id || earlier.epoch.happens_before(clock) {
                return;
            }
            if let Some(existing) = conflicts
                .iter_mut()
                .find(|c| c.earlier.op.id == earlier.op.id)
            {
                existing.start = existing.start.min(seg_start);
                existing.end = existing.end.max(seg_end);
            } else {
                conflicts.push(Conflict {
                    earlier: earlier.clone(),
                    later: access.clone(),
                    start: seg_start,
                    end: seg_end,
                });
            }
        };
        for (&seg_start, segment) in self.segments.range_mut(start..end) {
            if let Some(write) = &segment.write {
                note(write, seg_start, segment.end);
            }
            match access.kind {
                AccessKind::Read => {
                    match segment
                        .reads
                        .binary_search_by_key(&access.epoch.slot, |r| r.epoch.slot)
                    {
                        Ok(i) => segment.reads[i] = access.clone(),
                        Err(i) => segment.reads.insert(i, access.clone()),
                    }
                }
                AccessKind::Write | AccessKind::Free => {
                    for read in &segment.reads {
                        note(read, seg_start, segment.end);
                    }
                    segment.reads.clear();
                    segment.write = Some(access.clone());
                }
            }
        }
        self.coalesce(start, end);
        conflicts
    }
}

/// Identity of an allocation for messages.
#[derive(Debug, Clone, Copy)]
pub struct AllocationSummary {
    /// First address.
    pub base: u64,
    /// Size in bytes.
    pub size: usize,
    /// Kind of memory.
    pub kind: MemKind,
    /// Owning device ordinal.
    pub device: u32,
}

impl fmt::Display for AllocationSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} allocation {:#x} of {} bytes on device {}",
            self.kind.label(),
            self.base,
            self.size,
            self.device
        )
    }
}

/// A live allocation: owns its backing host memory.
#[derive(Debug)]
pub struct Allocation {
    /// Address, size, kind and device.
    pub summary: AllocationSummary,
    /// Flags given at allocation time (reported by `hipPointerGetAttributes`).
    pub flags: u32,
    /// Access history.
    pub shadow: Shadow,
    storage: NonNull<u8>,
    layout: Layout,
}

// SAFETY: `storage` is a heap block exclusively owned by this `Allocation` (allocated in
// `Allocation::allocate_storage`, freed only in `Drop`); moving the owner to another thread is sound.
unsafe impl Send for Allocation {}

impl Allocation {
    fn allocate_storage(size: usize) -> Option<(NonNull<u8>, Layout)> {
        let layout = Layout::from_size_align(size.max(1), ALIGNMENT).ok()?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        NonNull::new(ptr).map(|p| (p, layout))
    }

    /// The host address of byte `offset` (the caller has bounds-checked it).
    pub fn host_ptr(&self, offset: u64) -> *mut u8 {
        debug_assert!(offset <= self.summary.size as u64);
        self.storage.as_ptr().wrapping_add(offset as usize)
    }

    /// The host address of the allocation's first byte.
    pub fn host_base(&self) -> *mut u8 {
        self.storage.as_ptr()
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        // SAFETY: `storage` was allocated with exactly `layout` in `Allocation::allocate_storage` and is freed
        // only here.
        unsafe { std::alloc::dealloc(self.storage.as_ptr(), self.layout) }
    }
}

/// A freed range, remembered for use-after-free reports.
#[derive(Debug, Clone)]
pub struct Tombstone {
    /// What the allocation was.
    pub summary: AllocationSummary,
    /// The operation that freed it.
    pub freed_by: String,
}

/// Why an address range could not be resolved.
#[derive(Debug, Clone)]
pub enum AddressError {
    /// A null pointer.
    Null,
    /// Not inside any allocation the simulator knows.
    Unknown,
    /// Starts inside an allocation but runs past its end.
    OutOfBounds(AllocationSummary),
    /// Inside an allocation that was freed.
    Freed(Tombstone),
}

impl AddressError {
    /// Describes the problem for `[addr, addr+len)`.
    pub fn describe(&self, addr: u64, len: usize) -> String {
        match self {
            AddressError::Null => "null pointer".to_string(),
            AddressError::Unknown => format!(
                "[{addr:#x}, {:#x}) is not inside any allocation",
                addr.wrapping_add(len as u64)
            ),
            AddressError::OutOfBounds(summary) => format!(
                "[{addr:#x}, {:#x}) runs past the end of {summary} (end {:#x})",
                addr.wrapping_add(len as u64),
                summary.base + summary.size as u64
            ),
            AddressError::Freed(tomb) => format!(
                "use-after-free: {addr:#x} is inside {} freed by {}",
                tomb.summary, tomb.freed_by
            ),
        }
    }
}

/// All allocations of the simulator.
#[derive(Debug, Default)]
pub struct MemoryTable {
    live: BTreeMap<u64, Allocation>,
    freed: BTreeMap<u64, Tombstone>,
    freed_order: VecDeque<u64>,
    next_device_address: BTreeMap<u32, u64>,
    device_bytes: BTreeMap<u32, u64>,
    /// Device blocks freed into the stream-ordered pool (`cuMemFreeAsync`), by device and size,
    /// ready to be handed out again by `cuMemAllocAsync`.
    pool: BTreeMap<(u32, usize), Vec<Pooled>>,
}

/// A freed block of the stream-ordered pool: its address, its access history (ending with the
/// free) and the free's clock.
#[derive(Debug)]
struct Pooled {
    base: u64,
    shadow: Shadow,
    freed_at: VectorClock,
}

/// Why an allocation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocError {
    /// Size zero (the caller decides whether that is an error).
    ZeroSize,
    /// More than the device has, or the host is out of memory.
    OutOfMemory,
}

impl MemoryTable {
    /// Number of live allocations.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// Bytes of device memory in use on `device`.
    pub fn device_bytes_used(&self, device: u32) -> u64 {
        self.device_bytes.get(&device).copied().unwrap_or(0)
    }

    /// Allocates `size` bytes of `kind` memory for `device`; returns the address.
    pub fn allocate(
        &mut self,
        kind: MemKind,
        device: u32,
        size: usize,
        flags: u32,
    ) -> Result<u64, AllocError> {
        if size == 0 {
            return Err(AllocError::ZeroSize);
        }
        if kind == MemKind::Device
            && self.device_bytes_used(device).saturating_add(size as u64) > DEVICE_MEMORY_BYTES
        {
            return Err(AllocError::OutOfMemory);
        }
        let (storage, layout) =
            Allocation::allocate_storage(size).ok_or(AllocError::OutOfMemory)?;
        let base = match kind {
            MemKind::Device => {
                let next = self
                    .next_device_address
                    .entry(device)
                    .or_insert(DEVICE_ADDRESS_BASE + (u64::from(device) << 40));
                let base = *next;
                let rounded = (size as u64).div_ceil(ALIGNMENT as u64) * ALIGNMENT as u64;
                *next = base + rounded + ALIGNMENT as u64;
                *self.device_bytes.entry(device).or_insert(0) += size as u64;
                base
            }
            MemKind::Pinned | MemKind::Managed => {
                let base = storage.as_ptr() as u64;
                // The host allocator may reuse addresses of freed host memory.
                let end = base + size as u64;
                let stale: Vec<u64> = self
                    .freed
                    .range(..end)
                    .filter(|(s, t)| **s + t.summary.size as u64 > base)
                    .map(|(s, _)| *s)
                    .collect();
                for s in stale {
                    self.freed.remove(&s);
                }
                base
            }
        };
        self.live.insert(
            base,
            Allocation {
                summary: AllocationSummary {
                    base,
                    size,
                    kind,
                    device,
                },
                flags,
                shadow: Shadow::default(),
                storage,
                layout,
            },
        );
        Ok(base)
    }

    /// The live allocation containing `addr`, if any.
    pub fn containing(&self, addr: u64) -> Option<&Allocation> {
        self.live
            .range(..=addr)
            .next_back()
            .map(|(_, a)| a)
            .filter(|a| addr < a.summary.base + a.summary.size as u64)
    }

    /// The live allocation starting exactly at `base`.
    pub fn at_base(&self, base: u64) -> Option<&Allocation> {
        self.live.get(&base)
    }

    /// Mutable access to the allocation starting at `base`.
    pub fn get_mut(&mut self, base: u64) -> Option<&mut Allocation> {
        self.live.get_mut(&base)
    }

    fn tombstone_containing(&self, addr: u64) -> Option<&Tombstone> {
        self.freed
            .range(..=addr)
            .next_back()
            .map(|(_, t)| t)
            .filter(|t| addr < t.summary.base + t.summary.size as u64)
    }

    /// Resolves `[addr, addr+len)` to `(allocation base, offset)`; `len` may be zero.
    pub fn resolve(&self, addr: u64, len: usize) -> Result<(u64, u64), AddressError> {
        if addr == 0 {
            return Err(AddressError::Null);
        }
        match self.containing(addr) {
            Some(alloc) => {
                let offset = addr - alloc.summary.base;
                if offset.saturating_add(len as u64) > alloc.summary.size as u64 {
                    Err(AddressError::OutOfBounds(alloc.summary))
                } else {
                    Ok((alloc.summary.base, offset))
                }
            }
            None => match self.tombstone_containing(addr) {
                Some(tomb) => Err(AddressError::Freed(tomb.clone())),
                None => Err(AddressError::Unknown),
            },
        }
    }

    /// Releases the device allocation at `base` into the stream-ordered pool: like
    /// [`release`](Self::release), and the address may be handed out again, with its access
    /// history, by [`allocate_pooled`](Self::allocate_pooled) once the free (at `freed_at`) is
    /// ordered before the new allocation.
    pub fn release_pooled(
        &mut self,
        base: u64,
        freed_by: String,
        freed_at: VectorClock,
    ) -> Option<AllocationSummary> {
        let shadow = std::mem::take(&mut self.live.get_mut(&base)?.shadow);
        let summary = self.release(base, freed_by)?;
        self.pool
            .entry((summary.device, summary.size))
            .or_default()
            .push(Pooled {
                base,
                shadow,
                freed_at,
            });
        Some(summary)
    }

    /// A block of `size` bytes on `device` from the stream-ordered pool whose free is ordered
    /// before `at` (the driver's default reuse policy follows stream order and event
    /// dependencies), live again with the history of its previous life, so that an access still
    /// made through the old pointer conflicts with the new owner's. `None`: no such block.
    pub fn allocate_pooled(&mut self, device: u32, size: usize, at: &VectorClock) -> Option<u64> {
        let blocks = self.pool.get_mut(&(device, size))?;
        let i = blocks.iter().rposition(|b| b.freed_at.le(at))?;
        let block = blocks.remove(i);
        let (storage, layout) = Allocation::allocate_storage(size)?;
        self.freed.remove(&block.base);
        *self.device_bytes.entry(device).or_insert(0) += size as u64;
        self.live.insert(
            block.base,
            Allocation {
                summary: AllocationSummary {
                    base: block.base,
                    size,
                    kind: MemKind::Device,
                    device,
                },
                flags: 0,
                shadow: block.shadow,
                storage,
                layout,
            },
        );
        Some(block.base)
    }

    /// Removes the allocation at `base` (already checked to exist) and remembers its range.
    pub fn release(&mut self, base: u64, freed_by: String) -> Option<AllocationSummary> {
        let alloc = self.live.remove(&base)?;
        let summary = alloc.summary;
        if summary.kind == MemKind::Device
            && let Some(used) = self.device_bytes.get_mut(&summary.device)
        {
            *used = used.saturating_sub(summary.size as u64);
        }
        drop(alloc);
        self.freed.insert(base, Tombstone { summary, freed_by });
        self.freed_order.push_back(base);
        while self.freed_order.len() > TOMBSTONE_LIMIT {
            if let Some(old) = self.freed_order.pop_front() {
                self.freed.remove(&old);
            }
        }
        Some(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Slot;

    fn op(id: u64) -> OpRef {
        Arc::new(OpInfo {
            id,
            name: format!("op{id}"),
        })
    }

    fn access(id: u64, slot: Slot, tick: u64, kind: AccessKind) -> Access {
        Access {
            epoch: Epoch { slot, tick },
            op: op(id),
            kind,
        }
    }

    fn clock_with(slot: Slot, tick: u64) -> VectorClock {
        let mut c = VectorClock::new();
        for _ in 0..tick {
            c.tick(slot);
        }
        c
    }

    #[test]
    fn shadow_rules_table() {
        use AccessKind::*;
        // (first kind, second kind, second's clock sees first?, race expected)
        let cases = [
            (Write, Read, false, true),
            (Write, Read, true, false),
            (Read, Write, false, true),
            (Read, Write, true, false),
            (Read, Read, false, false),
            (Write, Write, false, true),
            (Write, Free, false, true),
            (Read, Free, false, true),
            (Read, Free, true, false),
        ];
        for (first, second, ordered, race) in cases {
            let mut shadow = Shadow::default();
            let a = access(1, 1, 1, first);
            let mut clock = clock_with(2, 1);
            if ordered {
                clock.join(&clock_with(1, 1));
            }
            assert!(shadow.access(0, 16, &a, &clock_with(1, 1)).is_empty());
            let b = access(2, 2, 1, second);
            let conflicts = shadow.access(8, 32, &b, &clock);
            assert_eq!(
                conflicts.len(),
                usize::from(race),
                "{first:?} then {second:?}, ordered={ordered}"
            );
            if race {
                assert_eq!((conflicts[0].start, conflicts[0].end), (8, 16));
            }
        }
    }

    #[test]
    fn history_stays_bounded() {
        let mut shadow = Shadow::default();
        let mut clock = VectorClock::new();
        for i in 0..1000u64 {
            let epoch = clock.tick(1);
            let kind = if i % 2 == 0 {
                AccessKind::Write
            } else {
                AccessKind::Read
            };
            let a = Access {
                epoch,
                op: op(i),
                kind,
            };
            let start = (i % 7) * 8;
            assert!(shadow.access(start, start + 64, &a, &clock).is_empty());
        }
        assert!(shadow.segment_count() < 40, "{}", shadow.segment_count());
        // One write over everything collapses the history.
        let epoch = clock.tick(1);
        let w = Access {
            epoch,
            op: op(5000),
            kind: AccessKind::Write,
        };
        shadow.access(0, 1024, &w, &clock);
        assert_eq!(shadow.segment_count(), 1);
    }

    #[test]
    fn resolve_table() {
        let mut table = MemoryTable::default();
        let a = table.allocate(MemKind::Device, 1, 100, 0).unwrap();
        assert_eq!(a, DEVICE_ADDRESS_BASE + (1 << 40));
        assert_eq!(a % ALIGNMENT as u64, 0);
        let b = table.allocate(MemKind::Device, 1, 10, 0).unwrap();
        assert!(b >= a + 100 + ALIGNMENT as u64);
        assert!(matches!(table.resolve(a, 100), Ok((base, 0)) if base == a));
        assert!(matches!(table.resolve(a + 99, 1), Ok((_, 99))));
        assert!(matches!(
            table.resolve(a + 50, 51),
            Err(AddressError::OutOfBounds(_))
        ));
        assert!(matches!(
            table.resolve(a + 100, 1),
            Err(AddressError::Unknown)
        ));
        assert!(matches!(table.resolve(0, 1), Err(AddressError::Null)));
        table.release(a, "free#1".into());
        assert!(matches!(
            table.resolve(a + 3, 1),
            Err(AddressError::Freed(_))
        ));
        assert_eq!(table.live_count(), 1);
        assert_eq!(table.device_bytes_used(1), 10);
        assert_eq!(
            table.allocate(MemKind::Device, 0, 0, 0),
            Err(AllocError::ZeroSize)
        );
    }
}
