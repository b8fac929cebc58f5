//! The conformance suite on the in-memory model, the reference the SQL models are held to.

mod common;

use common::Ctx;
use sequelstore::MemoryModel;

async fn make(_test: &str) -> Option<Ctx<MemoryModel>> {
    Some(Ctx::new(MemoryModel::new()))
}

sequelstore::conformance_tests!(make);
