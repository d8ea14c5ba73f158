//! The counting global allocator (`stats_alloc`'s, so no `unsafe` here) and
//! what the heap and memory tests read from it.

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Stats, StatsAlloc};

/// Counts every allocation of the process (heap test and memory footprint).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The allocation counters of the whole process so far.
pub fn stats() -> Stats {
    GLOBAL.stats()
}

/// Bytes allocated between `before` and `after` and not freed by `after`.
pub fn live_bytes(before: Stats, after: Stats) -> usize {
    (after.bytes_allocated - before.bytes_allocated)
        .saturating_sub(after.bytes_deallocated - before.bytes_deallocated)
}
