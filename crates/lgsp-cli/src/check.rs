//! `lgsp check`: load and compile everything, report every problem at once; `lgsp
//! catalog`: what the loaded configuration carries, for whom.

use std::path::Path;

use lgsp_mapping::dsl::testing;

use crate::exit;
use crate::load::{print_problems, try_load};

pub fn run(path: &Path) -> u8 {
    let loaded = match try_load(path) {
        Ok(l) => l,
        Err(problems) => {
            print_problems(&problems);
            return exit::USAGE;
        }
    };
    let mut problems = Vec::new();
    let mut cases = 0;
    for adapter in loaded.adapters.by_name.values() {
        match testing::load_cases(&adapter.dir) {
            Ok(c) => cases += c.len(),
            Err(p) => problems.extend(p),
        }
    }
    if !problems.is_empty() {
        print_problems(&problems);
        return exit::USAGE;
    }
    let mappings: usize = loaded
        .adapters
        .by_name
        .values()
        .map(|a| a.mapping_names().count())
        .sum();
    println!(
        "{}: ok ({} adapters, {} mappings, {} routes, {} test cases)",
        path.display(),
        loaded.adapters.by_name.len(),
        mappings,
        loaded.config.config.routes.len(),
        cases
    );
    exit::OK
}

/// `lgsp catalog [--json]`.
pub fn catalog(path: &Path, json: bool) -> u8 {
    let loaded = match try_load(path) {
        Ok(l) => l,
        Err(problems) => {
            print_problems(&problems);
            return exit::USAGE;
        }
    };
    let catalog = lgsp_mapping::catalog::build(&loaded.config.config, &loaded.adapters);
    if json {
        match serde_json::to_string_pretty(&catalog) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot print the catalogue: {e}");
                return exit::FAILED;
            }
        }
    } else {
        print!("{}", catalog.to_text());
    }
    exit::OK
}
