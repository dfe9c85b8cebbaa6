//! bay-bench: helpers shared by bay's micro-benchmarks (`cargo bench`) and
//! by the comparison-run binaries in `src/bin/`.
//!
//! It must not be depended on by any shipped crate.

pub mod fleet;
