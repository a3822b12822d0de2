//! Applying the plan: writing each NIC queue IRQ's `smp_affinity_list`.

use std::fmt;
use std::fs;
use std::path::Path;

use super::cpulist;
use super::topology::read_optional;
use super::{Plan, PlanError, PlannerArgs};

/// Whether to write, or only say what would be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Write the files.
    Root,
    /// Write nothing; report what would change.
    DryRun,
}

/// One IRQ whose affinity changed (or would change, in a dry run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrqChange {
    pub irq: u32,
    pub label: String,
    /// The previous `smp_affinity_list`, when readable.
    pub from: Option<Vec<usize>>,
    pub to: Vec<usize>,
}

/// What `--apply-irq-affinity` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyReport {
    /// True when nothing was written (not root).
    pub dry_run: bool,
    pub changed: Vec<IrqChange>,
    /// IRQs already as planned.
    pub unchanged: Vec<u32>,
    /// IRQs the kernel refused, with the reason.
    pub failed: Vec<(u32, String)>,
    pub warnings: Vec<String>,
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run { "would set" } else { "set" };
        if self.dry_run {
            writeln!(
                f,
                "IRQ affinity: not root, nothing written; as root it would do this:"
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "  WARNING: {w}")?;
        }
        for c in &self.changed {
            writeln!(
                f,
                "  IRQ {} ({}): {verb} smp_affinity_list {} -> {}",
                c.irq,
                c.label,
                c.from.as_deref().map_or("?".into(), cpulist::format),
                cpulist::format(&c.to)
            )?;
        }
        for (irq, why) in &self.failed {
            writeln!(f, "  IRQ {irq}: FAILED: {why}")?;
        }
        writeln!(
            f,
            "IRQ affinity: {} {}, {} already as planned, {} failed",
            self.changed.len(),
            if self.dry_run { "to change" } else { "changed" },
            self.unchanged.len(),
            self.failed.len()
        )
    }
}

/// Applies `plan.irqs`, writing as root and reporting what it would do
/// otherwise. Refuses to touch this machine's `/proc` with a plan made from a
/// snapshot's `/sys`.
pub fn apply_irq_affinity(plan: &Plan, args: &PlannerArgs) -> Result<ApplyReport, PlanError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    apply_irq_affinity_as(
        plan,
        args,
        if root {
            Privilege::Root
        } else {
            Privilege::DryRun
        },
    )
}

/// [`apply_irq_affinity`] with the privilege decided by the caller (tests
/// use [`Privilege::DryRun`] to see the non-root behaviour as root).
pub fn apply_irq_affinity_as(
    plan: &Plan,
    args: &PlannerArgs,
    privilege: Privilege,
) -> Result<ApplyReport, PlanError> {
    if args.sysfs_root.is_some() && args.procfs_root.is_none() {
        return Err(PlanError::Apply(
            "the plan comes from a --sysfs-root snapshot; refusing to write this machine's \
             /proc/irq (give --procfs-root to write into the snapshot instead)"
                .into(),
        ));
    }
    let procfs = plan.machine.procfs_root.as_path();
    let mut report = ApplyReport {
        dry_run: privilege == Privilege::DryRun,
        ..ApplyReport::default()
    };
    for pid in irqbalance_pids(procfs) {
        report.warnings.push(format!(
            "irqbalance is running (pid {pid}) and will move these IRQs again: \
             stop it (systemctl disable --now irqbalance) or ban the IRQ CPUs from it"
        ));
    }
    if plan.irqs.is_empty() {
        report.warnings.push(format!(
            "the plan moves no IRQs ({})",
            plan.notes
                .first()
                .cloned()
                .unwrap_or_else(|| "no NIC queue interrupts to move".into())
        ));
    }
    let labels: std::collections::BTreeMap<u32, &str> = plan
        .nics
        .iter()
        .flat_map(|n| n.queue_irqs.iter())
        .map(|q| (q.irq, q.label.as_str()))
        .collect();
    for (&irq, to) in &plan.irqs {
        let path = procfs.join(format!("irq/{irq}/smp_affinity_list"));
        let from = read_optional(&path).and_then(|t| cpulist::parse(&t).ok());
        if from.as_deref() == Some(to.as_slice()) {
            report.unchanged.push(irq);
            continue;
        }
        let change = IrqChange {
            irq,
            label: labels.get(&irq).copied().unwrap_or("?").to_string(),
            from,
            to: to.clone(),
        };
        if privilege == Privilege::Root {
            if let Err(why) = write_affinity(&path, to) {
                report.failed.push((irq, why));
                continue;
            }
        }
        report.changed.push(change);
    }
    Ok(report)
}

fn write_affinity(path: &Path, cpus: &[usize]) -> Result<(), String> {
    let want = cpulist::format(cpus);
    fs::write(path, format!("{want}\n")).map_err(|e| format!("writing {}: {e}", path.display()))?;
    // The kernel may accept the write and keep another mask (managed IRQs).
    match read_optional(path).and_then(|t| cpulist::parse(&t).ok()) {
        Some(now) if now == cpus => Ok(()),
        Some(now) => Err(format!(
            "kernel kept {} after writing {want} to {}",
            cpulist::format(&now),
            path.display()
        )),
        None => Err(format!("cannot read back {}", path.display())),
    }
}

/// PIDs whose `comm` is `irqbalance` under `procfs`.
fn irqbalance_pids(procfs: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir(procfs) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            (read_optional(&e.path().join("comm"))? == "irqbalance").then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    pids
}
