//! The conformance suite on the in-memory model, the reference the SQL models are held to.

mod common;

use common::Ctx;
use sequelstore::MemoryModel;

async fn make(_test: &str) -> Option<Ctx<MemoryModel>> {
    Some(Ctx::new(MemoryModel::new()))
}

sequelstore::conformance_tests!(make);

/// The suite again with a cache in front of the model.
#[cfg(feature = "cache")]
mod cached {
    use super::*;

    async fn make_cached(test: &str) -> Option<Ctx<sequelstore::Cached<MemoryModel>>> {
        Some(common::cached_ctx(make(test).await?))
    }

    sequelstore::conformance_tests!(make_cached);
}
