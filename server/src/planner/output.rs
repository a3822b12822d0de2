//! Showing the plan: a readable table for logs and `--print-plan`, and one
//! JSON object for `--print-plan --json`.

use std::fmt::Write;

use serde_json::{json, Map, Value};

use super::{cpulist, Plan};

fn list_or_dash(cpus: &[usize]) -> String {
    if cpus.is_empty() {
        "-".into()
    } else {
        cpulist::format(cpus)
    }
}

pub(super) fn table(plan: &Plan) -> String {
    let m = &plan.machine;
    let mut s = String::new();
    let source = if m.snapshot {
        format!(
            "snapshot (sysfs {}, procfs {})",
            m.sysfs_root.display(),
            m.procfs_root.display()
        )
    } else {
        "this machine".to_string()
    };
    let _ = writeln!(s, "affinity plan for {source}");
    let _ = writeln!(
        s,
        "  machine: {} online CPU(s) {}, {} usable {}; {} physical core(s) usable, {} thread(s)/core, \
         {} package(s), NUMA node(s) {}, {} L3 domain(s)",
        m.online.len(),
        cpulist::format(&m.online),
        m.usable.len(),
        cpulist::format(&m.usable),
        m.physical_cores,
        m.threads_per_core,
        m.packages,
        if m.numa_nodes.is_empty() { "-".into() } else { cpulist::format(&m.numa_nodes) },
        m.l3_domains
    );
    let _ = writeln!(s, "  mask:    {}", m.mask_sources.join("; "));
    if plan.nics.is_empty() {
        let _ = writeln!(s, "  NICs:    none with interrupt lines");
    }
    for nic in &plan.nics {
        let _ = writeln!(
            s,
            "  NIC:     {} ({}{}, NUMA node {}): {} queue IRQ(s), {} other",
            nic.name,
            nic.driver.as_deref().unwrap_or("driver ?"),
            nic.pci
                .as_deref()
                .map_or(String::new(), |p| format!(" at {p}")),
            nic.numa_node.map_or("?".into(), |n| n.to_string()),
            nic.queue_irqs.len(),
            nic.other_irqs.len()
        );
    }
    let _ = writeln!(s, "  IRQ CPUs:   {}", list_or_dash(&plan.irq_cpus));
    let _ = writeln!(
        s,
        "  shard CPUs: {} ({} shard(s))",
        list_or_dash(&plan.distinct_shard_cpus()),
        plan.shard_cpus.len()
    );
    for note in &plan.notes {
        let _ = writeln!(s, "  note: {note}");
    }
    for w in &plan.warnings {
        let _ = writeln!(s, "  WARNING: {w}");
    }

    let _ = writeln!(s, "  shard  cpu  core-cpus  node");
    for (i, &cpu) in plan.shard_cpus.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {i:>5}  {cpu:>3}  {:<9}  {}",
            core_cpus(plan, cpu),
            node_of(plan, cpu)
        );
    }

    let queue_lines: Vec<_> = plan.nics.iter().flat_map(|n| n.queue_irqs.iter()).collect();
    if !queue_lines.is_empty() {
        let _ = writeln!(
            s,
            "  irq    label                          now        planned"
        );
        for q in queue_lines {
            let now = q.current.as_deref().map_or("?".into(), cpulist::format);
            let planned = plan
                .irqs
                .get(&q.irq)
                .map_or("(leave)".to_string(), |c| cpulist::format(c));
            let _ = writeln!(
                s,
                "  {:>5}  {:<29}  {:<9}  {}",
                q.irq, q.label, now, planned
            );
        }
    }
    s
}

fn core_cpus(plan: &Plan, cpu: usize) -> String {
    plan.machine
        .core_of
        .get(&cpu)
        .map_or_else(|| cpu.to_string(), |s| cpulist::format(s))
}

fn node_of(plan: &Plan, cpu: usize) -> String {
    plan.machine
        .node_of
        .get(&cpu)
        .map_or("-".into(), |n| n.to_string())
}

fn irq_json(q: &super::NicIrq, planned: Option<&Vec<usize>>) -> Value {
    json!({
        "irq": q.irq,
        "label": q.label,
        "queue": q.queue,
        "current": q.current,
        "planned": planned,
    })
}

pub(super) fn json(plan: &Plan) -> String {
    let m = &plan.machine;
    let mut irqs = Map::new();
    for (irq, cpus) in &plan.irqs {
        irqs.insert(irq.to_string(), json!(cpus));
    }
    let nics: Vec<Value> = plan
        .nics
        .iter()
        .map(|n| {
            json!({
                "name": n.name,
                "device": n.device,
                "pci": n.pci,
                "driver": n.driver,
                "numa_node": n.numa_node,
                "queue_irqs": n.queue_irqs.iter().map(|q| irq_json(q, plan.irqs.get(&q.irq))).collect::<Vec<_>>(),
                "other_irqs": n.other_irqs.iter().map(|q| irq_json(q, None)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let v = json!({
        "shard_cpus": plan.shard_cpus,
        "irq_cpus": plan.irq_cpus,
        "irqs": Value::Object(irqs),
        "shards": plan.shard_cpus.len(),
        "warnings": plan.warnings,
        "notes": plan.notes,
        "machine": {
            "source": if m.snapshot { "snapshot" } else { "live" },
            "sysfs_root": m.sysfs_root.display().to_string(),
            "procfs_root": m.procfs_root.display().to_string(),
            "online": m.online,
            "usable": m.usable,
            "mask_sources": m.mask_sources,
            "packages": m.packages,
            "physical_cores": m.physical_cores,
            "threads_per_core": m.threads_per_core,
            "numa_nodes": m.numa_nodes,
            "l3_domains": m.l3_domains,
            "nic_numa_node": m.nic_numa_node,
        },
        "nics": nics,
    });
    v.to_string()
}
