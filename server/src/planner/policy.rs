//! The policy: which cores serve NIC interrupts and which run shards.
//!
//! Counting is in physical cores (the same as CPUs without SMT): an IRQ core
//! takes all of its usable SMT siblings, so no shard ever shares a physical
//! core with interrupt work.

use std::collections::BTreeMap;

use super::cpulist;
use super::irq::Nic;
use super::topology::{Core, Topology};
use super::PlanError;

/// What `--irq-cores` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IrqCores {
    Auto,
    None,
    Count(usize),
    List(Vec<usize>),
}

impl IrqCores {
    /// `auto`, `none`, a bare number (a count of cores), or a CPU list
    /// (`0,1`, `0-1`; a single CPU is written `3-3` or `3,`).
    pub fn parse(s: &str) -> Result<IrqCores, PlanError> {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "auto" | "" => return Ok(IrqCores::Auto),
            "none" | "0" => return Ok(IrqCores::None),
            _ => {}
        }
        if let Ok(n) = t.parse::<usize>() {
            return Ok(IrqCores::Count(n));
        }
        cpulist::parse(t)
            .map(IrqCores::List)
            .map_err(|msg| PlanError::BadArg {
                flag: "--irq-cores",
                msg: format!(
                    "{msg}; expected auto, none, a count or a CPU list such as 0,1 or 0-1"
                ),
            })
    }
}

/// The default number of IRQ cores for `cores` usable physical cores:
/// none below 4, 1 for 4-7, 2 for 8-15, then one per 8.
pub fn auto_irq_count(cores: usize) -> usize {
    match cores {
        0..=3 => 0,
        4..=7 => 1,
        8..=15 => 2,
        n => n / 8,
    }
}

/// The policy's inputs besides the machine.
#[derive(Debug, Clone)]
pub struct Request {
    pub irq_cores: IrqCores,
    pub shard_cpus: Option<Vec<usize>>,
    pub smt_shards: bool,
    pub shards: Option<usize>,
}

/// The policy's answer.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    pub shard_cpus: Vec<usize>,
    pub irq_cpus: Vec<usize>,
    pub irqs: BTreeMap<u32, Vec<usize>>,
    pub nic_node: Option<usize>,
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

fn outside(flag: &'static str, cpus: &[usize], usable: &[usize]) -> Result<(), PlanError> {
    let bad: Vec<usize> = cpus
        .iter()
        .copied()
        .filter(|c| !usable.contains(c))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(PlanError::CpuOutsideMask {
        flag,
        cpus: bad,
        usable: usable.to_vec(),
    })
}

/// Orders cores by preference: the NIC's NUMA node first (when known), then
/// by node, L3 domain and lowest CPU, so consecutive shards share an L3.
fn preference_order(cores: &mut [Core], nic_node: Option<usize>) {
    cores.sort_by_key(|c| {
        let off_node = nic_node.is_some() && c.node != nic_node;
        (off_node, c.node, c.l3, c.first())
    });
}

/// Runs the policy over `topo` restricted to `usable`, for `nics`.
pub fn decide(
    topo: &Topology,
    usable: &[usize],
    nics: &[Nic],
    req: &Request,
) -> Result<Decision, PlanError> {
    let mut d = Decision::default();
    if usable.is_empty() {
        return Err(PlanError::NoUsableCpus);
    }
    if req.shards == Some(0) {
        return Err(PlanError::BadArg {
            flag: "--shards",
            msg: "must be at least 1".into(),
        });
    }
    let (nic_node, split) = super::irq::nic_node(nics);
    // A node preference only means something with more than one node.
    d.nic_node = nic_node.filter(|_| topo.nodes.len() > 1);
    if split {
        d.warnings.push(format!(
            "NICs sit on different NUMA nodes; preferring node {} (most queues)",
            nic_node.map_or("?".into(), |n| n.to_string())
        ));
    }
    let queue_irqs: Vec<_> = nics.iter().flat_map(|n| n.queue_irqs.iter()).collect();

    let mut cores = topo.cores(usable);
    preference_order(&mut cores, d.nic_node);
    let core_of = |cpu: usize| cores.iter().position(|c| c.cpus.contains(&cpu));

    // Explicit shard CPUs first: they constrain where IRQ cores may go.
    if let Some(list) = &req.shard_cpus {
        if list.is_empty() {
            return Err(PlanError::BadArg {
                flag: "--shard-cpus",
                msg: "empty CPU list".into(),
            });
        }
        outside("--shard-cpus", list, usable)?;
    }
    let shard_cores: Vec<usize> = req
        .shard_cpus
        .iter()
        .flatten()
        .filter_map(|&c| core_of(c))
        .collect();
    let free_cores: Vec<usize> = (0..cores.len())
        .filter(|i| !shard_cores.contains(i))
        .collect();

    // IRQ cores.
    let mut irq_core_idx: Vec<usize> = Vec::new();
    let mut irq_cpus: Vec<usize> = Vec::new();
    match &req.irq_cores {
        IrqCores::None => d
            .notes
            .push("--irq-cores none: NIC interrupts left where they are".into()),
        IrqCores::List(list) => {
            outside("--irq-cores", list, usable)?;
            irq_cpus = list.clone();
            for &c in list {
                if let Some(i) = core_of(c) {
                    if shard_cores.contains(&i) {
                        return Err(PlanError::Conflict(format!(
                            "--irq-cores CPU {c} shares a physical core ({}) with --shard-cpus",
                            cpulist::format(&cores[i].cpus)
                        )));
                    }
                    if !irq_core_idx.contains(&i) {
                        irq_core_idx.push(i);
                    }
                }
            }
        }
        IrqCores::Count(n) => {
            let n = *n;
            let room = if req.shard_cpus.is_some() {
                free_cores.len()
            } else {
                cores.len().saturating_sub(1)
            };
            if n > room {
                return Err(PlanError::Conflict(format!(
                    "--irq-cores {n} needs {n} physical cores but only {room} can be spared \
                     ({} usable: {})",
                    cores.len(),
                    cpulist::format(usable)
                )));
            }
            irq_core_idx = free_cores.iter().copied().take(n).collect();
        }
        IrqCores::Auto => {
            let want = auto_irq_count(cores.len());
            if queue_irqs.is_empty() {
                d.notes
                    .push("no NIC queue interrupts found: no IRQ cores reserved".into());
            } else if want == 0 {
                d.notes.push(format!(
                    "{} usable physical core(s), fewer than 4: no IRQ cores reserved, \
                     NIC interrupts left where they are",
                    cores.len()
                ));
            } else if usable.len() < topo.online.len()
                && queue_irqs.iter().all(|q| {
                    q.current.as_ref().is_some_and(|cur| {
                        !cur.is_empty() && cur.iter().all(|c| !usable.contains(c))
                    })
                })
            {
                let mut elsewhere: Vec<usize> = queue_irqs
                    .iter()
                    .flat_map(|q| q.current.clone().unwrap_or_default())
                    .collect();
                elsewhere.sort_unstable();
                elsewhere.dedup();
                d.notes.push(format!(
                    "NIC queue interrupts already go to CPUs {} outside this process's CPUs {}: \
                     no IRQ cores reserved here",
                    cpulist::format(&elsewhere),
                    cpulist::format(usable)
                ));
            } else {
                let got = want.min(free_cores.len());
                if got < want {
                    d.warnings.push(format!(
                        "wanted {want} IRQ core(s) but --shard-cpus leaves {got} free"
                    ));
                }
                irq_core_idx = free_cores.iter().copied().take(got).collect();
                if got > 0 {
                    d.notes.push(format!(
                        "{} usable physical cores: {got} for NIC interrupts{}",
                        cores.len(),
                        d.nic_node
                            .map_or(String::new(), |n| format!(" on the NIC's node {n}"))
                    ));
                }
            }
        }
    }
    if !matches!(req.irq_cores, IrqCores::List(_)) {
        irq_cpus = irq_core_idx
            .iter()
            .flat_map(|&i| cores[i].cpus.clone())
            .collect();
    }
    irq_cpus.sort_unstable();
    if !irq_cpus.is_empty() && queue_irqs.is_empty() {
        d.warnings.push(format!(
            "IRQ CPUs {} reserved but no NIC queue interrupts were found to put there",
            cpulist::format(&irq_cpus)
        ));
    }

    // Shards.
    let (mut shard_list, all_threads) = match &req.shard_cpus {
        Some(list) => (list.clone(), list.clone()),
        None => {
            let left: Vec<&Core> = cores
                .iter()
                .enumerate()
                .filter(|(i, _)| !irq_core_idx.contains(i))
                .map(|(_, c)| c)
                .collect();
            if left.is_empty() {
                return Err(PlanError::Conflict(format!(
                    "no CPUs left for shards: the IRQ cores {} take every usable core",
                    cpulist::format(&irq_cpus)
                )));
            }
            // First threads of every core, then second threads, and so on,
            // so that shards fill distinct physical cores first.
            let depth = left.iter().map(|c| c.cpus.len()).max().unwrap_or(1);
            let threads: Vec<usize> = (0..depth)
                .flat_map(|t| left.iter().filter_map(move |c| c.cpus.get(t).copied()))
                .collect();
            let firsts: Vec<usize> = left.iter().map(|c| c.first()).collect();
            (
                if req.smt_shards {
                    threads.clone()
                } else {
                    firsts
                },
                threads,
            )
        }
    };

    match req.shards {
        None => {}
        Some(n) if n <= shard_list.len() => {
            if n < shard_list.len() && req.shard_cpus.is_some() {
                d.notes.push(format!(
                    "--shards {n}: using the first {n} of --shard-cpus {}",
                    cpulist::format(&shard_list)
                ));
            }
            shard_list.truncate(n);
        }
        Some(n) => {
            if req.shard_cpus.is_none() && !req.smt_shards && all_threads.len() > shard_list.len() {
                let extra = (n - shard_list.len()).min(all_threads.len() - shard_list.len());
                d.warnings.push(format!(
                    "--shards {n} is more than the {} free physical cores: {extra} shard(s) \
                     run on SMT siblings",
                    shard_list.len()
                ));
                let more: Vec<usize> = all_threads[shard_list.len()..]
                    .iter()
                    .copied()
                    .take(extra)
                    .collect();
                shard_list.extend(more);
            }
            if n > shard_list.len() {
                d.warnings.push(format!(
                    "--shards {n} is more than the {} shard CPUs ({}): shards share CPUs, \
                     round-robin",
                    shard_list.len(),
                    cpulist::format(&shard_list)
                ));
                let base = shard_list.clone();
                shard_list = (0..n).map(|i| base[i % base.len()]).collect();
            }
        }
    }
    d.shard_cpus = shard_list;

    // Spread queue interrupts over the IRQ CPUs: physical cores first, then
    // their siblings; the Rx and Tx lines of one queue pair stay together.
    if !irq_cpus.is_empty() && !queue_irqs.is_empty() {
        let mut spread: Vec<Vec<usize>> = Vec::new();
        for &c in &irq_cpus {
            let key = core_of(c);
            match spread.iter_mut().find(|g| core_of(g[0]) == key) {
                Some(g) => g.push(c),
                None => spread.push(vec![c]),
            }
        }
        let depth = spread.iter().map(Vec::len).max().unwrap_or(1);
        let order: Vec<usize> = (0..depth)
            .flat_map(|t| spread.iter().filter_map(move |g| g.get(t).copied()))
            .collect();
        let mut slot = 0usize;
        for nic in nics {
            let mut last_queue = None;
            for (k, q) in nic.queue_irqs.iter().enumerate() {
                if k > 0 && q.queue != last_queue {
                    slot += 1;
                }
                last_queue = q.queue;
                d.irqs.insert(q.irq, vec![order[slot % order.len()]]);
            }
            if !nic.queue_irqs.is_empty() {
                slot += 1;
            }
        }
    }
    d.irq_cpus = irq_cpus;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_counts_follow_the_issue() {
        assert_eq!(auto_irq_count(2), 0);
        assert_eq!(auto_irq_count(3), 0);
        assert_eq!(auto_irq_count(4), 1);
        assert_eq!(auto_irq_count(7), 1);
        assert_eq!(auto_irq_count(8), 2);
        assert_eq!(auto_irq_count(15), 2);
        assert_eq!(auto_irq_count(16), 2);
        assert_eq!(auto_irq_count(24), 3);
        assert_eq!(auto_irq_count(64), 8);
    }

    #[test]
    fn irq_cores_argument() {
        assert_eq!(IrqCores::parse("auto").unwrap(), IrqCores::Auto);
        assert_eq!(IrqCores::parse("none").unwrap(), IrqCores::None);
        assert_eq!(IrqCores::parse("0").unwrap(), IrqCores::None);
        assert_eq!(IrqCores::parse("2").unwrap(), IrqCores::Count(2));
        assert_eq!(IrqCores::parse("0,1").unwrap(), IrqCores::List(vec![0, 1]));
        assert_eq!(IrqCores::parse("0-1").unwrap(), IrqCores::List(vec![0, 1]));
        assert_eq!(IrqCores::parse("3-3").unwrap(), IrqCores::List(vec![3]));
        assert!(IrqCores::parse("two").is_err());
    }
}
