//! Startup affinity planner.
//!
//! At startup Tessera reads the machine (online CPUs and their topology, the
//! process's CPU mask and cgroup cpuset, the NICs' interrupt lines), decides
//! which cores serve network interrupts and which run shards, and says what
//! it decided. The same code plans for another machine from a captured copy
//! of its `/sys` and `/proc` files (`--sysfs-root`, `--procfs-root`).
//!
//! Files, one job each: [`topology`] reads CPUs and the mask, [`irq`] finds
//! NIC interrupt lines, [`policy`] decides, `output` renders the plan as a
//! table or JSON, [`apply`] writes IRQ affinities. [`cpulist`] is the kernel's
//! CPU list syntax.
//!
//! Typical use from `main`:
//! ```ignore
//! if args.planner.print_plan {
//!     std::process::exit(planner::print_plan_command(&args.planner, args.shards));
//! }
//! let plan = planner::make_plan(&args.planner, args.shards)?;
//! log::info!("affinity plan\n{}", plan.table());
//! if args.planner.apply_irq_affinity {
//!     log::info!("{}", planner::apply_irq_affinity(&plan, &args.planner)?);
//! }
//! // shard i runs pinned to plan.shard_cpus[i]
//! ```

pub mod apply;
pub mod cpulist;
pub mod irq;
mod output;
pub mod policy;
pub mod topology;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use apply::{apply_irq_affinity, apply_irq_affinity_as, ApplyReport, IrqChange, Privilege};
pub use irq::{Nic, NicIrq};
pub use policy::IrqCores;

/// The planner's command-line flags (flattened into the server's clap
/// arguments).
#[derive(clap::Args, Debug, Clone)]
pub struct PlannerArgs {
    /// CPUs for NIC interrupts: auto | none | N (a count of cores) | LIST (e.g. 0,1 or 0-1)
    #[arg(
        long = "irq-cores",
        default_value = "auto",
        value_name = "auto|none|N|LIST"
    )]
    pub irq_cores: String,
    /// Run shards on exactly these CPUs (e.g. 2-7), overriding the policy
    #[arg(long = "shard-cpus", value_name = "LIST")]
    pub shard_cpus: Option<String>,
    /// Also run shards on SMT siblings (default: one shard per physical core)
    #[arg(long = "smt-shards")]
    pub smt_shards: bool,
    /// Print the affinity plan and exit
    #[arg(long = "print-plan")]
    pub print_plan: bool,
    /// With --print-plan: print the plan as one JSON object
    #[arg(long = "json")]
    pub json: bool,
    /// Plan from a copy of another machine's /sys (snapshot mode)
    #[arg(long = "sysfs-root", value_name = "DIR")]
    pub sysfs_root: Option<PathBuf>,
    /// Plan from a copy of another machine's /proc (snapshot mode)
    #[arg(long = "procfs-root", value_name = "DIR")]
    pub procfs_root: Option<PathBuf>,
    /// Write the planned smp_affinity_list of each NIC queue IRQ (needs root)
    #[arg(long = "apply-irq-affinity")]
    pub apply_irq_affinity: bool,
}

impl Default for PlannerArgs {
    /// The same as no flags on the command line (`--irq-cores auto`).
    fn default() -> Self {
        PlannerArgs {
            irq_cores: "auto".into(),
            shard_cpus: None,
            smt_shards: false,
            print_plan: false,
            json: false,
            sysfs_root: None,
            procfs_root: None,
            apply_irq_affinity: false,
        }
    }
}

/// Why no plan could be made or applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// A file the planner needs could not be read.
    Read { path: PathBuf, error: String },
    /// A file held something unexpected.
    Parse { path: PathBuf, msg: String },
    /// A flag's value could not be understood.
    BadArg { flag: &'static str, msg: String },
    /// A flag names CPUs this process may not use.
    CpuOutsideMask {
        flag: &'static str,
        cpus: Vec<usize>,
        usable: Vec<usize>,
    },
    /// The request contradicts itself or the machine.
    Conflict(String),
    /// No online CPU is in the process's mask.
    NoUsableCpus,
    /// Writing an IRQ affinity went wrong in a way that stops the whole apply.
    Apply(String),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Read { path, error } => {
                write!(
                    f,
                    "affinity planner: cannot read {}: {error}",
                    path.display()
                )
            }
            PlanError::Parse { path, msg } => {
                write!(
                    f,
                    "affinity planner: unexpected contents in {}: {msg}",
                    path.display()
                )
            }
            PlanError::BadArg { flag, msg } => write!(f, "{flag}: {msg}"),
            PlanError::CpuOutsideMask { flag, cpus, usable } => write!(
                f,
                "{flag}: CPU {} not usable here (usable CPUs: {})",
                cpulist::format(cpus),
                cpulist::format(usable)
            ),
            PlanError::Conflict(msg) => write!(f, "affinity planner: {msg}"),
            PlanError::NoUsableCpus => write!(
                f,
                "affinity planner: no online CPU is in this process's affinity mask/cpuset"
            ),
            PlanError::Apply(msg) => write!(f, "--apply-irq-affinity: {msg}"),
        }
    }
}

impl std::error::Error for PlanError {}

/// What the planner saw of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineSummary {
    /// `live`, or `snapshot` when planning from --sysfs-root/--procfs-root.
    pub snapshot: bool,
    pub sysfs_root: PathBuf,
    pub procfs_root: PathBuf,
    pub online: Vec<usize>,
    pub usable: Vec<usize>,
    /// Where the usable set came from, e.g. `sched_getaffinity: 0-7`.
    pub mask_sources: Vec<String>,
    pub packages: usize,
    /// Physical cores among the usable CPUs.
    pub physical_cores: usize,
    pub threads_per_core: usize,
    pub numa_nodes: Vec<usize>,
    pub l3_domains: usize,
    /// The NICs' NUMA node when known and the machine has more than one.
    pub nic_numa_node: Option<usize>,
    /// Usable CPU -> the usable CPUs of its physical core.
    pub core_of: BTreeMap<usize, Vec<usize>>,
    /// Online CPU -> its NUMA node, when sysfs says.
    pub node_of: BTreeMap<usize, usize>,
}

/// The planner's decision.
#[derive(Debug, Clone)]
pub struct Plan {
    /// One entry per shard; index = shard id. CPUs repeat when more shards
    /// were asked for than there are shard CPUs.
    pub shard_cpus: Vec<usize>,
    /// CPUs reserved for NIC interrupts (no shard runs on their cores).
    pub irq_cpus: Vec<usize>,
    /// NIC queue IRQ number -> the CPUs its `smp_affinity_list` should name.
    pub irqs: BTreeMap<u32, Vec<usize>>,
    pub warnings: Vec<String>,
    /// Why the plan is what it is, one line per decision.
    pub notes: Vec<String>,
    pub machine: MachineSummary,
    pub nics: Vec<Nic>,
}

impl Plan {
    /// The plan as a readable multi-line table (ends with a newline).
    pub fn table(&self) -> String {
        output::table(self)
    }

    /// The plan as one JSON object (no trailing newline).
    pub fn to_json(&self) -> String {
        output::json(self)
    }

    /// The shard CPUs without repeats, ascending.
    pub fn distinct_shard_cpus(&self) -> Vec<usize> {
        let mut v = self.shard_cpus.clone();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Reads the machine (or the snapshot named by `args`) and makes a plan for
/// `shards` shards (`None`: one per shard CPU the policy finds).
pub fn make_plan(args: &PlannerArgs, shards: Option<usize>) -> Result<Plan, PlanError> {
    let irq_cores = IrqCores::parse(&args.irq_cores)?;
    let shard_cpus = match &args.shard_cpus {
        Some(s) => Some(cpulist::parse(s).map_err(|msg| PlanError::BadArg {
            flag: "--shard-cpus",
            msg: format!("{msg}; expected a CPU list such as 2-7 or 2,3,4"),
        })?),
        None => None,
    };
    let roots = topology::Roots::new(args.sysfs_root.as_deref(), args.procfs_root.as_deref());
    let mut warnings = Vec::new();
    let topo = match topology::Topology::read(&roots.sysfs) {
        Ok(t) => t,
        // A sandbox without sysfs CPU files: the live affinity mask is all
        // there is to go on. A snapshot without them is an error.
        Err(e) if !roots.snapshot => match topology::sched_getaffinity() {
            Some(cpus) if !cpus.is_empty() => {
                warnings.push(format!(
                    "{e}: topology unknown, planning from the affinity mask"
                ));
                topology::Topology::flat(&cpus)
            }
            _ => return Err(e),
        },
        Err(e) => return Err(e),
    };
    let mask = topology::read_mask(&roots, &topo);
    let (nics, irq_warning) = irq::discover(&roots);
    warnings.extend(irq_warning);
    let req = policy::Request {
        irq_cores,
        shard_cpus,
        smt_shards: args.smt_shards,
        shards,
    };
    let d = policy::decide(&topo, &mask.usable, &nics, &req)?;

    if roots.snapshot && (args.sysfs_root.is_none() || args.procfs_root.is_none()) {
        warnings.push(
            "only one of --sysfs-root/--procfs-root given: the other is read from this machine"
                .to_string(),
        );
    }
    warnings.extend(d.warnings);
    let machine = MachineSummary {
        snapshot: roots.snapshot,
        sysfs_root: roots.sysfs.clone(),
        procfs_root: roots.procfs.clone(),
        online: topo.online.clone(),
        usable: mask.usable.clone(),
        mask_sources: mask.sources,
        packages: topo.packages(),
        physical_cores: topo.cores(&mask.usable).len(),
        threads_per_core: topo.threads_per_core(),
        numa_nodes: topo.nodes.keys().copied().collect(),
        l3_domains: topo.l3_domains(),
        nic_numa_node: d.nic_node,
        core_of: topo
            .cores(&mask.usable)
            .into_iter()
            .flat_map(|c| {
                c.cpus
                    .clone()
                    .into_iter()
                    .map(move |cpu| (cpu, c.cpus.clone()))
            })
            .collect(),
        node_of: topo
            .cpus
            .values()
            .filter_map(|c| c.node.map(|n| (c.id, n)))
            .collect(),
    };
    Ok(Plan {
        shard_cpus: d.shard_cpus,
        irq_cpus: d.irq_cpus,
        irqs: d.irqs,
        warnings,
        notes: d.notes,
        machine,
        nics,
    })
}

/// `--print-plan`: prints the plan (JSON with `--json`), applies it first
/// when `--apply-irq-affinity` is also given, and returns the process exit
/// code (0 on success, 1 with the error on stderr).
pub fn print_plan_command(args: &PlannerArgs, shards: Option<usize>) -> i32 {
    let plan = match make_plan(args, shards) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let report = if args.apply_irq_affinity {
        match apply_irq_affinity(&plan, args) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        }
    } else {
        None
    };
    if args.json {
        println!("{}", plan.to_json());
        if let Some(r) = report {
            eprint!("{r}");
        }
    } else {
        print!("{}", plan.table());
        if let Some(r) = report {
            print!("{r}");
        }
    }
    0
}
