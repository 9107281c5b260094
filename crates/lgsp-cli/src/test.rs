//! `lgsp test`: run adapters' test cases and print a readable diff for each failure.

use lgsp_mapping::dsl::testing::{self, Outcome};
use similar::TextDiff;

use crate::exit;
use crate::load::{load, print_problems};

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    #[command(flatten)]
    config: crate::ConfigArg,
    /// Rewrite golden files with the current output.
    #[arg(long)]
    update: bool,
    /// Adapters to test (default: all).
    adapters: Vec<String>,
}

pub fn run(args: &TestArgs) -> u8 {
    let Some(loaded) = load(&args.config.config) else {
        return exit::USAGE;
    };
    for name in &args.adapters {
        if !loaded.adapters.by_name.contains_key(name) {
            let known: Vec<&str> = loaded.adapters.by_name.keys().map(String::as_str).collect();
            eprintln!(
                "error: no adapter `{name}` in the configuration; adapters: {}",
                known.join(", ")
            );
            return exit::USAGE;
        }
    }
    let limits = loaded.limits();
    let (mut passed, mut failed) = (0usize, 0usize);
    for (name, adapter) in &loaded.adapters.by_name {
        if !args.adapters.is_empty() && !args.adapters.contains(name) {
            continue;
        }
        let cases = match testing::load_cases(&adapter.dir) {
            Ok(c) => c,
            Err(p) => {
                print_problems(&p);
                return exit::USAGE;
            }
        };
        for case in &cases {
            let label = format!("{name}: {}", case.spec.name);
            match testing::run_case(adapter, case, &limits, args.update) {
                Outcome::Passed => {
                    passed += 1;
                    println!("ok   {label}");
                }
                other => {
                    failed += 1;
                    println!("FAIL {label}");
                    describe(&other);
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 { exit::OK } else { exit::FAILED }
}

fn describe(outcome: &Outcome) {
    match outcome {
        Outcome::Passed => {}
        Outcome::Differs {
            golden,
            expected,
            actual,
        } => {
            if expected.is_empty() {
                println!(
                    "     golden file {} is missing or empty (run with --update to write it)",
                    golden.display()
                );
            }
            let diff = TextDiff::from_lines(expected, actual);
            let shown = diff
                .unified_diff()
                .context_radius(2)
                .header(&golden.display().to_string(), "actual")
                .to_string();
            for line in shown.lines() {
                println!("     {line}");
            }
        }
        Outcome::WrongError { expected, actual } => {
            println!("     expected: {expected}");
            for line in actual.lines() {
                println!("     got:      {line}");
            }
        }
        Outcome::Failed { error } => println!("     error: {error}"),
        Outcome::Broken { problem } => println!("     broken case: {problem}"),
    }
}
