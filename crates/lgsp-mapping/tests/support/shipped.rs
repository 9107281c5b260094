//! The adapters of the shipped configuration (`config/lgsp.yaml`), with the Rust steps
//! their mappings name registered as the binary registers them. Shared by the tests, the
//! bench and the profiling example.

use std::path::Path;

use lgsp_core::step::StepRegistry;
use lgsp_mapping::dsl::Adapters;

pub fn adapters() -> Adapters {
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/lgsp.yaml");
    let loaded = lgsp_core::config::load(&cfg, lgsp_core::config::EnvOverrides::none())
        .expect("the shipped configuration loads");
    let mut steps = StepRegistry::new();
    lgsp_adapter_emis::register(&mut steps).expect("the emis steps register");
    lgsp_adapter_tax::register(&mut steps).expect("the tax steps register");
    Adapters::load_with_steps(&loaded, steps).expect("the shipped adapters load")
}
