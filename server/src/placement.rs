//! Where shards run: startup's bridge to the affinity planner.
//!
//! Configuration parameters (`--port`...) are read by `config`; what is
//! left of the command line are the planner's flags, parsed here by clap.

use clap::Parser;
use tessera_server::planner::{self, Plan, PlannerArgs};

#[derive(Parser, Debug)]
#[command(
    name = "tessera-server",
    disable_help_flag = true,
    disable_version_flag = true,
    no_binary_name = true
)]
struct PlacementCli {
    #[command(flatten)]
    planner: PlannerArgs,
}

/// Parses the arguments that are not configuration parameters.
pub fn parse(rest: &[String]) -> Result<PlannerArgs, String> {
    PlacementCli::try_parse_from(rest)
        .map(|c| c.planner)
        .map_err(|e| {
            // clap's message, cut to its first line: startup errors are one line.
            e.to_string()
                .lines()
                .next()
                .unwrap_or("bad option")
                .trim_start_matches("error: ")
                .to_string()
        })
}

pub fn help_text() -> String {
    use clap::CommandFactory;
    PlacementCli::command()
        .render_help()
        .to_string()
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("--"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The plan for `shards` shards (0: as many as the planner finds room for).
pub fn make_plan(args: &PlannerArgs, shards: usize) -> Result<Plan, String> {
    planner::make_plan(args, (shards > 0).then_some(shards)).map_err(|e| e.to_string())
}

/// `--print-plan`: prints (and applies, with --apply-irq-affinity) and exits.
pub fn print_plan(args: &PlannerArgs, shards: usize) -> i32 {
    planner::print_plan_command(args, (shards > 0).then_some(shards))
}

/// `--apply-irq-affinity` at startup: steers NIC interrupts, reports.
pub fn apply(plan: &Plan, args: &PlannerArgs) {
    if !args.apply_irq_affinity {
        return;
    }
    match planner::apply_irq_affinity(plan, args) {
        Ok(report) => {
            for line in report.to_string().lines() {
                log::info!("{line}");
            }
        }
        Err(e) => log::warn!("IRQ affinity not applied: {e}"),
    }
}
