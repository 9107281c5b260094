//! Loading the configuration and adapters, printing problems the same way everywhere.

use std::path::Path;

use lgsp_core::config::{self, EnvOverrides, LoadedConfig, Problem};
use lgsp_mapping::decode::Limits;
use lgsp_mapping::dsl::Adapters;

/// The configuration and its compiled adapters.
pub struct Loaded {
    pub config: LoadedConfig,
    pub adapters: Adapters,
}

impl Loaded {
    pub fn limits(&self) -> Limits {
        let l = &self.config.config.limits;
        Limits {
            max_bytes: usize::try_from(l.max_message_bytes.bytes()).unwrap_or(usize::MAX),
            max_depth: l.max_depth as usize,
        }
    }
}

/// Load everything; on problems print them all on stderr and return `None`.
pub fn load(path: &Path) -> Option<Loaded> {
    match try_load(path) {
        Ok(l) => Some(l),
        Err(problems) => {
            print_problems(&problems);
            None
        }
    }
}

pub fn try_load(path: &Path) -> Result<Loaded, Vec<Problem>> {
    let (config, mut problems) = config::load_partial(path, EnvOverrides::from_process())?;
    let steps = crate::steps::registry().map_err(|e| {
        vec![Problem {
            file: Some("crates/lgsp-cli/src/steps.rs".into()),
            key: String::new(),
            pos: None,
            message: e.to_string(),
        }]
    })?;
    match Adapters::load_with_steps(&config, steps) {
        Ok(adapters) if problems.is_empty() => return Ok(Loaded { config, adapters }),
        Ok(_) => {}
        Err(p) => problems.extend(p),
    }
    Err(problems)
}

pub fn print_problems(problems: &[Problem]) {
    for p in problems {
        eprintln!("{p}");
    }
    let n = problems.len();
    eprintln!("{n} problem{} found", if n == 1 { "" } else { "s" });
}
