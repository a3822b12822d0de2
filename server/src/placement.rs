//! Where shards run: the bridge between startup and the affinity planner.
//!
//! Until the planner module lands, shards are placed on the CPUs of the
//! process's affinity mask, one per CPU, round-robin when more shards than
//! CPUs are asked for (allowed, with a warning: tests run 4 shards on 2
//! CPUs).

use std::fmt::Write as _;

#[derive(Debug, Default, Clone)]
pub struct PlacementArgs {
    pub print_plan: bool,
    pub json: bool,
}

pub struct Plan {
    pub usable: Vec<usize>,
    pub shard_cpus: Vec<usize>,
    pub warnings: Vec<String>,
}

pub fn help_text() -> String {
    "  --print-plan                   print where shards would run, and exit\n  --json                         with --print-plan: as JSON".into()
}

/// Parses the arguments that are not configuration parameters.
pub fn parse(rest: &[String]) -> Result<PlacementArgs, String> {
    let mut a = PlacementArgs::default();
    for r in rest {
        match r.as_str() {
            "--print-plan" => a.print_plan = true,
            "--json" => a.json = true,
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(a)
}

/// The CPUs this process may run on.
pub fn affinity_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills the set we pass.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

pub fn make_plan(_args: &PlacementArgs, shards: usize) -> Result<Plan, String> {
    let usable = affinity_cpus();
    let n = if shards == 0 { usable.len() } else { shards };
    let mut warnings = Vec::new();
    if n > usable.len() {
        warnings.push(format!(
            "{n} shards on {} usable CPUs: shards share CPUs",
            usable.len()
        ));
    }
    let shard_cpus = (0..n).map(|i| usable[i % usable.len()]).collect();
    Ok(Plan {
        usable,
        shard_cpus,
        warnings,
    })
}

pub fn shard_cpus(plan: &Plan) -> Vec<usize> {
    plan.shard_cpus.clone()
}

pub fn warnings(plan: &Plan) -> Vec<String> {
    plan.warnings.clone()
}

pub fn apply(_plan: &Plan, _args: &PlacementArgs) {}

pub fn show(plan: &Plan, json: bool) -> String {
    if json {
        let list = |v: &[usize]| {
            v.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        return format!(
            "{{\"shard_cpus\":[{}],\"irq_cpus\":[],\"irqs\":{{}},\"usable_cpus\":[{}]}}",
            list(&plan.shard_cpus),
            list(&plan.usable)
        );
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "placement: {} shards on usable CPUs {:?}",
        plan.shard_cpus.len(),
        plan.usable
    );
    for (i, c) in plan.shard_cpus.iter().enumerate() {
        let _ = writeln!(s, "  shard {i:>3} -> CPU {c}");
    }
    s
}
