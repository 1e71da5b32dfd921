//! Vector clocks and epochs: the happens-before relation the simulator checks.
//!
//! Every *timeline* has a component (a "slot"): slot [`HOST_SLOT`] is the host (all host threads
//! together, see the crate docs), and every stream (created, legacy default or per-thread
//! default) gets the next free slot when it is first used. Slots are never reused within one
//! simulator lifetime (until `gpusim_reset`), so an epoch always names exactly one timeline.
//!
//! An operation is identified by its [`Epoch`]: the slot it ran on and the value of that slot's
//! component just after it ticked. Operation `a` happens before an operation whose clock is `C`
//! iff `a.tick <= C[a.slot]` (the FastTrack test).

/// Index of a timeline (host or stream) in a vector clock.
pub type Slot = u32;

/// The host's slot. Streams start at 1.
pub const HOST_SLOT: Slot = 0;

/// One operation's position: its timeline and its tick on that timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch {
    /// The timeline the operation ran on.
    pub slot: Slot,
    /// The timeline's component right after the operation ticked it.
    pub tick: u64,
}

impl Epoch {
    /// Whether the operation at this epoch happens before anything that carries `clock`.
    pub fn happens_before(self, clock: &VectorClock) -> bool {
        self.tick <= clock.get(self.slot)
    }
}

/// A vector clock with one component per slot; missing components are zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VectorClock {
    components: Vec<u64>,
}

impl VectorClock {
    /// The all-zero clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// The component of `slot`.
    pub fn get(&self, slot: Slot) -> u64 {
        self.components.get(slot as usize).copied().unwrap_or(0)
    }

    /// Advances the component of `slot` by one and returns the epoch of the new event.
    pub fn tick(&mut self, slot: Slot) -> Epoch {
        let index = slot as usize;
        if self.components.len() <= index {
            self.components.resize(index + 1, 0);
        }
        self.components[index] += 1;
        Epoch {
            slot,
            tick: self.components[index],
        }
    }

    /// Component-wise maximum: afterwards everything ordered before `other` is ordered before
    /// `self`.
    pub fn join(&mut self, other: &VectorClock) {
        if self.components.len() < other.components.len() {
            self.components.resize(other.components.len(), 0);
        }
        for (mine, theirs) in self.components.iter_mut().zip(&other.components) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// Whether every component of `self` is `<=` the one of `other`.
    pub fn le(&self, other: &VectorClock) -> bool {
        self.components
            .iter()
            .enumerate()
            .all(|(slot, &tick)| tick <= other.get(slot as Slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(components: &[u64]) -> VectorClock {
        VectorClock {
            components: components.to_vec(),
        }
    }

    #[test]
    fn happens_before_table() {
        // (epoch slot, epoch tick, clock, expected)
        let cases: &[(Slot, u64, &[u64], bool)] = &[
            (1, 1, &[0, 1], true),
            (1, 2, &[0, 1], false),
            (2, 1, &[0, 5], false), // missing component is zero
            (0, 3, &[3], true),
            (0, 4, &[3, 9, 9], false),
        ];
        for &(slot, tick, components, expected) in cases {
            let epoch = Epoch { slot, tick };
            assert_eq!(
                epoch.happens_before(&clock(components)),
                expected,
                "{epoch:?} vs {components:?}"
            );
        }
    }

    #[test]
    fn join_and_tick() {
        let mut a = clock(&[1, 0, 3]);
        a.join(&clock(&[0, 2, 1, 4]));
        assert_eq!(a, clock(&[1, 2, 3, 4]));
        let e = a.tick(5);
        assert_eq!(e, Epoch { slot: 5, tick: 1 });
        assert_eq!(a.get(5), 1);
        assert!(clock(&[1, 2]).le(&a));
        assert!(!a.le(&clock(&[1, 2])));
    }
}
