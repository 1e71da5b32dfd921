//! Streams, events and the host timeline: the ordering rules as code.
//!
//! | action | rule |
//! |---|---|
//! | enqueue on stream `S` | `S ⊔= host`; if `S` is the legacy default stream of device `d`: `S ⊔=` every blocking stream of `d`; if `S` is blocking: `S ⊔= legacy(d)`; then `S[S] += 1` and the op's clock is `S` |
//! | `record(E, S)` | an enqueue on `S`; `E := S` |
//! | `wait(S, E)` | an enqueue on `S`; `S ⊔= E` (no-op clock if `E` was never recorded) |
//! | stream / event synchronize, successful query | `host ⊔= S` / `host ⊔= E` |
//! | context / device synchronize | `host ⊔=` every stream of the device (and destroyed ones) |
//! | host access, host-side free | `host[host] += 1`; the access's clock is `host` |
//!
//! Streams and events belong to a context (a [`Context`] id: the primary context of device `d`
//! is `d`; `cuCtxCreate` makes more); the legacy and per-thread default streams are per
//! context, and "every blocking stream" above means those of the stream's context.
//!
//! Blocking streams are streams created with flags 0 and the per-thread default streams;
//! `CU_STREAM_NON_BLOCKING` / `hipStreamNonBlocking` streams do not synchronise with the legacy
//! stream. All host threads share one host timeline: the simulator cannot see the locks host
//! threads use among themselves, so it does not invent races between them.

use std::collections::{BTreeMap, HashMap};

use crate::clock::{Epoch, HOST_SLOT, Slot, VectorClock};

/// A context id: the primary context of device `d` is `d`; contexts made by `cuCtxCreate` are
/// `(serial << 8) | d`.
pub type Context = u32;

/// The device of a context.
pub const fn context_device(context: Context) -> u32 {
    context & 0xff
}

/// How a stream is named by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKey {
    /// A stream made by `cuStreamCreate*` / `hipStreamCreate*`, by its handle value.
    Created(u64),
    /// The legacy default stream (CUDA `NULL`/`CU_STREAM_LEGACY`, HIP null stream) of a
    /// context (HIP: of the device's primary context).
    Legacy(Context),
    /// The per-thread default stream (`CU_STREAM_PER_THREAD`, `hipStreamPerThread`).
    PerThread {
        /// The simulator's token for the calling thread.
        thread: u64,
        /// The context it belongs to.
        context: Context,
    },
}

/// One stream's state.
#[derive(Debug)]
pub struct Stream {
    /// Its component in vector clocks.
    pub slot: Slot,
    /// Device it belongs to.
    pub device: u32,
    /// Context it belongs to.
    pub context: Context,
    /// Synchronises with the legacy default stream.
    pub blocking: bool,
    /// Flags given at creation.
    pub flags: u32,
    /// Everything ordered before the stream's next operation.
    pub clock: VectorClock,
    /// Name used in reports, e.g. `stream 3`.
    pub label: String,
}

/// One event's state.
#[derive(Debug)]
pub struct Event {
    /// Flags given at creation.
    pub flags: u32,
    /// Context it belongs to.
    pub context: Context,
    /// Clock of the last record, with the op's id (used as a fake timestamp).
    pub recorded: Option<(VectorClock, u64)>,
}

/// The result of enqueueing one operation.
#[derive(Debug, Clone)]
pub struct OpClock {
    /// Where the op sits.
    pub epoch: Epoch,
    /// Everything ordered before (and including) it.
    pub clock: VectorClock,
}

/// Host clock, streams and events.
#[derive(Debug)]
pub struct Timelines {
    host: VectorClock,
    next_slot: Slot,
    streams: HashMap<StreamKey, Stream>,
    /// Per context: joined clocks of destroyed (blocking, all) streams.
    retired: BTreeMap<Context, (VectorClock, VectorClock)>,
    events: HashMap<u64, Event>,
}

impl Default for Timelines {
    fn default() -> Self {
        Self {
            host: VectorClock::new(),
            next_slot: HOST_SLOT + 1,
            streams: HashMap::new(),
            retired: BTreeMap::new(),
            events: HashMap::new(),
        }
    }
}

impl Timelines {
    fn new_slot(&mut self) -> Slot {
        let slot = self.next_slot;
        self.next_slot += 1;
        slot
    }

    /// Registers a stream of `context` created under `handle`.
    pub fn create_stream(&mut self, handle: u64, context: Context, flags: u32) {
        let slot = self.new_slot();
        self.streams.insert(
            StreamKey::Created(handle),
            Stream {
                slot,
                device: context_device(context),
                context,
                blocking: flags & 1 == 0,
                flags,
                clock: VectorClock::new(),
                label: format!("stream {slot}"),
            },
        );
    }

    /// Whether `key` names a stream that exists (implicit streams always exist).
    pub fn has_stream(&self, key: StreamKey) -> bool {
        match key {
            StreamKey::Created(_) => self.streams.contains_key(&key),
            StreamKey::Legacy(_) | StreamKey::PerThread { .. } => true,
        }
    }

    /// The stream for `key`, creating implicit (legacy, per-thread) streams on first use.
    pub fn stream(&mut self, key: StreamKey) -> Option<&mut Stream> {
        if !self.streams.contains_key(&key) {
            let (context, label) = match key {
                StreamKey::Created(_) => return None,
                StreamKey::Legacy(context) => (context, "legacy default stream".to_string()),
                StreamKey::PerThread { thread, context } => (
                    context,
                    format!("per-thread default stream of thread {thread}"),
                ),
            };
            let label = if context == context_device(context) {
                label
            } else {
                format!("{label} of context {context:#x}")
            };
            let slot = self.new_slot();
            self.streams.insert(
                key,
                Stream {
                    slot,
                    device: context_device(context),
                    context,
                    blocking: true,
                    flags: 0,
                    clock: VectorClock::new(),
                    label: format!("{label} [slot {slot}]"),
                },
            );
        }
        self.streams.get_mut(&key)
    }

    /// Removes a created stream; its work stays visible to device synchronisation.
    pub fn destroy_stream(&mut self, key: StreamKey) -> bool {
        let Some(stream) = self.streams.remove(&key) else {
            return false;
        };
        let retired = self.retired.entry(stream.context).or_default();
        if stream.blocking {
            retired.0.join(&stream.clock);
        }
        retired.1.join(&stream.clock);
        true
    }

    /// Number of created (not implicit) streams alive.
    pub fn created_stream_count(&self) -> usize {
        self.streams
            .keys()
            .filter(|k| matches!(k, StreamKey::Created(_)))
            .count()
    }

    /// Enqueues one operation on `key`, applying the implicit-synchronisation rules.
    pub fn enqueue(&mut self, key: StreamKey) -> Option<OpClock> {
        let (context, blocking) = {
            let s = self.stream(key)?;
            (s.context, s.blocking)
        };
        let mut implicit = VectorClock::new();
        if let StreamKey::Legacy(_) = key {
            for (other_key, other) in &self.streams {
                if other.context == context && other.blocking && *other_key != key {
                    implicit.join(&other.clock);
                }
            }
            if let Some((retired_blocking, _)) = self.retired.get(&context) {
                implicit.join(retired_blocking);
            }
        } else if blocking && let Some(legacy) = self.streams.get(&StreamKey::Legacy(context)) {
            implicit.join(&legacy.clock);
        }
        implicit.join(&self.host);
        let stream = self.streams.get_mut(&key)?;
        stream.clock.join(&implicit);
        let epoch = stream.clock.tick(stream.slot);
        Some(OpClock {
            epoch,
            clock: stream.clock.clone(),
        })
    }

    /// A host-side operation (host access, host-side free): ticks the host timeline.
    pub fn host_op(&mut self) -> OpClock {
        let epoch = self.host.tick(HOST_SLOT);
        OpClock {
            epoch,
            clock: self.host.clone(),
        }
    }

    /// The host waits for everything enqueued on `key` so far.
    pub fn host_join_stream(&mut self, key: StreamKey) -> bool {
        let Some(stream) = self.stream(key) else {
            return false;
        };
        let clock = stream.clock.clone();
        self.host.join(&clock);
        true
    }

    /// The work enqueued on `key` so far (`None`: no such stream).
    pub fn stream_clock(&mut self, key: StreamKey) -> Option<VectorClock> {
        self.stream(key).map(|s| s.clock.clone())
    }

    /// The work the last record of `event` captured (`None`: never recorded or unknown).
    pub fn event_clock(&self, event: u64) -> Option<VectorClock> {
        self.events
            .get(&event)?
            .recorded
            .as_ref()
            .map(|r| r.0.clone())
    }

    /// Whether the host is already ordered after all of `clock`.
    pub fn host_has_waited_for(&self, clock: &VectorClock) -> bool {
        clock.le(&self.host)
    }

    /// The host waits for `clock`.
    pub fn host_join(&mut self, clock: &VectorClock) {
        self.host.join(clock);
    }

    /// The host waits for every stream of `device` (all its contexts).
    pub fn host_join_device(&mut self, device: u32) {
        self.host_join_where(|c| context_device(c) == device);
    }

    /// The host waits for every stream of `context`.
    pub fn host_join_context(&mut self, context: Context) {
        self.host_join_where(|c| c == context);
    }

    fn host_join_where(&mut self, which: impl Fn(Context) -> bool) {
        let mut all = VectorClock::new();
        for stream in self.streams.values().filter(|s| which(s.context)) {
            all.join(&stream.clock);
        }
        for (_, retired) in self.retired.iter().filter(|(c, _)| which(**c)) {
            all.join(&retired.1);
        }
        self.host.join(&all);
    }

    /// Registers an event under `handle`.
    pub fn create_event(&mut self, handle: u64, flags: u32, context: Context) {
        self.events.insert(
            handle,
            Event {
                flags,
                context,
                recorded: None,
            },
        );
    }

    /// The event under `handle`.
    pub fn event(&self, handle: u64) -> Option<&Event> {
        self.events.get(&handle)
    }

    /// Destroys an event.
    pub fn destroy_event(&mut self, handle: u64) -> bool {
        self.events.remove(&handle).is_some()
    }

    /// Number of live events.
    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// Completes a record of `event`: `op` is the record operation already enqueued on its
    /// stream (with id `op_id`, used as a fake timestamp). Returns false for an unknown event.
    pub fn set_event(&mut self, event: u64, op: &OpClock, op_id: u64) -> bool {
        match self.events.get_mut(&event) {
            Some(e) => {
                e.recorded = Some((op.clock.clone(), op_id));
                true
            }
            None => false,
        }
    }

    /// Enqueues a record of `event` on `key` (tests).
    #[cfg(test)]
    pub fn record(&mut self, event: u64, key: StreamKey, op_id: u64) -> Option<OpClock> {
        if !self.events.contains_key(&event) {
            return None;
        }
        let op = self.enqueue(key)?;
        self.set_event(event, &op, op_id);
        Some(op)
    }

    /// Makes `key` wait for the last record of `event`.
    pub fn wait(&mut self, key: StreamKey, event: u64) -> Option<OpClock> {
        let event_clock = self
            .events
            .get(&event)?
            .recorded
            .as_ref()
            .map(|r| r.0.clone());
        self.enqueue(key)?;
        let stream = self.streams.get_mut(&key)?;
        if let Some(clock) = event_clock {
            stream.clock.join(&clock);
        }
        Some(OpClock {
            epoch: Epoch {
                slot: stream.slot,
                tick: stream.clock.get(stream.slot),
            },
            clock: stream.clock.clone(),
        })
    }

    /// The host waits for the last record of `event` (no-op if never recorded).
    pub fn host_join_event(&mut self, event: u64) -> bool {
        let Some(e) = self.events.get(&event) else {
            return false;
        };
        if let Some((clock, _)) = &e.recorded {
            let clock = clock.clone();
            self.host.join(&clock);
        }
        true
    }

    /// The label and device of a stream (for op names).
    pub fn describe(&mut self, key: StreamKey) -> Option<(String, u32)> {
        self.stream(key).map(|s| (s.label.clone(), s.device))
    }

    /// Device of a stream.
    pub fn device_of(&mut self, key: StreamKey) -> Option<u32> {
        self.stream(key).map(|s| s.device)
    }

    /// Context of a stream.
    pub fn context_of(&mut self, key: StreamKey) -> Option<Context> {
        self.stream(key).map(|s| s.context)
    }
}

/// Builds an op reference for reports.
pub fn op_name(api: &str, id: u64, where_: &str, device: Option<u32>) -> String {
    match device {
        Some(d) => format!("{api}#{id} on {where_} (device {d})"),
        None => format!("{api}#{id} on {where_}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ordering table: does op 1 happen before op 2?
    #[test]
    fn ordering_rules_table() {
        const A: u64 = 0x10;
        const B: u64 = 0x20;
        const NB: u64 = 0x30;
        #[derive(Debug, Clone, Copy)]
        enum Step {
            Enq(StreamKey),
            Record(StreamKey),
            Wait(StreamKey),
            SyncStream(StreamKey),
            SyncDevice,
            SyncEvent,
        }
        use Step::*;
        let a = StreamKey::Created(A);
        let b = StreamKey::Created(B);
        let nb = StreamKey::Created(NB);
        let legacy = StreamKey::Legacy(0);
        // (first op, steps in between, second op, ordered?)
        let cases: &[(StreamKey, &[Step], StreamKey, bool)] = &[
            (a, &[], b, false),
            (a, &[], a, true),
            (a, &[Record(a), Wait(b)], b, true),
            (a, &[Record(a)], b, false),
            (a, &[SyncStream(a)], b, true),
            (a, &[SyncStream(b)], b, false),
            (a, &[SyncDevice], b, true),
            (a, &[Record(a), SyncEvent], b, true),
            (a, &[], legacy, true),
            (nb, &[], legacy, false),
            (legacy, &[], a, true),
            (legacy, &[], nb, false),
            (a, &[Enq(legacy)], b, true),
            (nb, &[Enq(legacy)], b, false),
        ];
        for (i, &(first, steps, second, expected)) in cases.iter().enumerate() {
            let mut t = Timelines::default();
            t.create_stream(A, 0, 0);
            t.create_stream(B, 0, 0);
            t.create_stream(NB, 0, 1);
            t.create_event(1, 0, 0);
            let op1 = t.enqueue(first).unwrap();
            for step in steps {
                match *step {
                    Enq(k) => {
                        t.enqueue(k).unwrap();
                    }
                    Record(k) => {
                        t.record(1, k, 0).unwrap();
                    }
                    Wait(k) => {
                        t.wait(k, 1).unwrap();
                    }
                    SyncStream(k) => {
                        t.host_join_stream(k);
                    }
                    SyncDevice => t.host_join_device(0),
                    SyncEvent => {
                        t.host_join_event(1);
                    }
                }
            }
            let op2 = t.enqueue(second).unwrap();
            assert_eq!(
                op1.epoch.happens_before(&op2.clock),
                expected,
                "case {i}: {first:?} {steps:?} {second:?}"
            );
        }
    }

    #[test]
    fn host_ops_and_streams() {
        let mut t = Timelines::default();
        t.create_stream(A_HANDLE, 0, 0);
        let a = StreamKey::Created(A_HANDLE);
        let h1 = t.host_op();
        let s1 = t.enqueue(a).unwrap();
        assert!(h1.epoch.happens_before(&s1.clock), "host before enqueue");
        let h2 = t.host_op();
        assert!(!s1.epoch.happens_before(&h2.clock), "no sync yet");
        t.host_join_stream(a);
        let h3 = t.host_op();
        assert!(s1.epoch.happens_before(&h3.clock));
        assert!(t.destroy_stream(a));
        assert_eq!(t.created_stream_count(), 0);
        assert!(t.enqueue(a).is_none());
    }

    const A_HANDLE: u64 = 0x99;
}
