//! Random numbers for spreading work apart and telling instances apart: not for secrets.

use std::hash::BuildHasher;

/// 64 bits from the process's random hasher keys over the time and the process id.
pub(crate) fn random_u64() -> u64 {
    std::collections::hash_map::RandomState::new()
        .hash_one((std::time::Instant::now(), std::process::id()))
}
