//! The affinity planner against snapshot fixtures of real machine shapes
//! (`tests/fixtures/machines/*`), and against this machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tessera_server::planner::{self, make_plan, Plan, PlanError, PlannerArgs};

fn machine(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/machines")
        .join(name)
}

fn snapshot_args(name: &str) -> PlannerArgs {
    let root = machine(name);
    PlannerArgs {
        sysfs_root: Some(root.join("sys")),
        procfs_root: Some(root.join("proc")),
        ..PlannerArgs::default()
    }
}

fn plan(name: &str, edit: impl FnOnce(&mut PlannerArgs), shards: Option<usize>) -> Plan {
    let mut args = snapshot_args(name);
    edit(&mut args);
    let p = make_plan(&args, shards).unwrap_or_else(|e| panic!("{name}: {e}"));
    eprintln!("{name}:\n{}", p.table());
    p
}

fn plan_err(name: &str, edit: impl FnOnce(&mut PlannerArgs), shards: Option<usize>) -> PlanError {
    let mut args = snapshot_args(name);
    edit(&mut args);
    match make_plan(&args, shards) {
        Ok(p) => panic!("{name}: expected an error, got\n{}", p.table()),
        Err(e) => e,
    }
}

fn irqs(pairs: &[(u32, usize)]) -> BTreeMap<u32, Vec<usize>> {
    pairs.iter().map(|&(irq, cpu)| (irq, vec![cpu])).collect()
}

/// No shard CPU shares a physical core with an IRQ CPU.
fn assert_cores_disjoint(p: &Plan) {
    for cpu in &p.shard_cpus {
        let core = &p.machine.core_of[cpu];
        for irq_cpu in &p.irq_cpus {
            assert!(
                !core.contains(irq_cpu),
                "shard CPU {cpu} shares a core with IRQ CPU {irq_cpu}"
            );
        }
    }
}

#[test]
fn c8g_2xlarge_gets_two_irq_cores_and_six_shards() {
    let p = plan("c8g-2xlarge", |_| {}, None);
    assert_eq!(p.irq_cpus, vec![0, 1]);
    assert_eq!(p.shard_cpus, vec![2, 3, 4, 5, 6, 7]);
    // ens5-Tx-Rx-0..7 are IRQs 17..24, alternating over CPUs 0 and 1.
    assert_eq!(
        p.irqs,
        irqs(&[
            (17, 0),
            (18, 1),
            (19, 0),
            (20, 1),
            (21, 0),
            (22, 1),
            (23, 0),
            (24, 1)
        ])
    );
    assert_eq!(p.nics.len(), 1);
    assert_eq!(p.nics[0].name, "ens5");
    assert_eq!(p.nics[0].driver.as_deref(), Some("ena"));
    assert_eq!(p.nics[0].numa_node, None);
    // The management line is the NIC's but not a queue: left alone.
    assert_eq!(p.nics[0].other_irqs.len(), 1);
    assert_eq!(p.nics[0].other_irqs[0].label, "ena-mgmnt@pci:0000:00:05.0");
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_cores_disjoint(&p);
}

#[test]
fn c8g_2xlarge_overrides() {
    let p = plan("c8g-2xlarge", |a| a.irq_cores = "none".into(), None);
    assert!(p.irq_cpus.is_empty());
    assert!(p.irqs.is_empty());
    assert_eq!(p.shard_cpus, (0..8).collect::<Vec<_>>());

    let p = plan("c8g-2xlarge", |a| a.irq_cores = "1".into(), None);
    assert_eq!(p.irq_cpus, vec![0]);
    assert_eq!(p.shard_cpus, (1..8).collect::<Vec<_>>());
    assert!(p.irqs.values().all(|c| c == &vec![0]));

    let p = plan("c8g-2xlarge", |a| a.irq_cores = "6-7".into(), None);
    assert_eq!(p.irq_cpus, vec![6, 7]);
    assert_eq!(p.shard_cpus, (0..6).collect::<Vec<_>>());
    assert_eq!(p.irqs[&17], vec![6]);
    assert_eq!(p.irqs[&18], vec![7]);

    let p = plan("c8g-2xlarge", |a| a.shard_cpus = Some("4-7".into()), None);
    assert_eq!(p.shard_cpus, vec![4, 5, 6, 7]);
    assert_eq!(p.irq_cpus, vec![0, 1]);

    let p = plan("c8g-2xlarge", |_| {}, Some(4));
    assert_eq!(p.shard_cpus, vec![2, 3, 4, 5]);
    assert_eq!(p.irq_cpus, vec![0, 1]);

    // More shards than shard CPUs: allowed, round-robin, with a warning.
    let p = plan("c8g-2xlarge", |_| {}, Some(8));
    assert_eq!(p.shard_cpus, vec![2, 3, 4, 5, 6, 7, 2, 3]);
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(p.warnings[0].contains("round-robin"));
}

#[test]
fn requests_that_contradict_the_machine_are_errors() {
    let e = plan_err("c8g-2xlarge", |a| a.shard_cpus = Some("6-9".into()), None);
    assert_eq!(
        e.to_string(),
        "--shard-cpus: CPU 8-9 not usable here (usable CPUs: 0-7)"
    );
    let e = plan_err("c8g-2xlarge", |a| a.irq_cores = "0,12".into(), None);
    assert!(
        matches!(
            e,
            PlanError::CpuOutsideMask {
                flag: "--irq-cores",
                ..
            }
        ),
        "{e}"
    );
    let e = plan_err("c8g-2xlarge", |a| a.irq_cores = "8".into(), None);
    assert!(e.to_string().contains("--irq-cores 8"), "{e}");
    let e = plan_err(
        "c8g-2xlarge",
        |a| {
            a.irq_cores = "0-1".into();
            a.shard_cpus = Some("1-7".into());
        },
        None,
    );
    assert!(e.to_string().contains("shares a physical core"), "{e}");
    let e = plan_err("c8g-2xlarge", |a| a.irq_cores = "lots".into(), None);
    assert!(e.to_string().starts_with("--irq-cores: "), "{e}");
    let e = plan_err("c8g-2xlarge", |_| {}, Some(0));
    assert!(e.to_string().starts_with("--shards: "), "{e}");
    // The container may only use 2-5.
    let e = plan_err(
        "container-cpuset-2-5",
        |a| a.shard_cpus = Some("0-3".into()),
        None,
    );
    assert_eq!(
        e.to_string(),
        "--shard-cpus: CPU 0-1 not usable here (usable CPUs: 2-5)"
    );
    // A snapshot that is not there.
    let e = plan_err("no-such-machine", |_| {}, None);
    assert!(matches!(e, PlanError::Read { .. }), "{e}");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn c8g_16xlarge_gets_eight_irq_cores() {
    let p = plan("c8g-16xlarge", |_| {}, None);
    assert_eq!(p.irq_cpus, (0..8).collect::<Vec<_>>());
    assert_eq!(p.shard_cpus, (8..64).collect::<Vec<_>>());
    // 32 ENA queues (IRQs 17..48): four per IRQ core.
    assert_eq!(p.irqs.len(), 32);
    let expect: BTreeMap<u32, Vec<usize>> =
        (0..32).map(|q| (17 + q, vec![q as usize % 8])).collect();
    assert_eq!(p.irqs, expect);
    assert_eq!(p.nics[0].numa_node, Some(0));
    assert_eq!(p.machine.l3_domains, 1);
    assert_cores_disjoint(&p);
}

#[test]
fn x86_smt_host_keeps_shards_off_irq_cores_and_near_the_nic() {
    let p = plan("x86-smt-i40e", |_| {}, None);
    assert_eq!(p.machine.physical_cores, 8);
    assert_eq!(p.machine.threads_per_core, 2);
    assert_eq!(p.machine.numa_nodes, vec![0, 1]);
    assert_eq!(p.machine.nic_numa_node, Some(1));
    assert_eq!(p.machine.l3_domains, 2);
    // Two IRQ cores on the NIC's node 1 (cores {4,12} and {5,13}), both
    // threads of each; one shard per remaining core, node 1 first.
    assert_eq!(p.irq_cpus, vec![4, 5, 12, 13]);
    assert_eq!(p.shard_cpus, vec![6, 7, 0, 1, 2, 3]);
    // Four queues, one per IRQ CPU, physical cores before siblings.
    assert_eq!(p.irqs, irqs(&[(121, 4), (122, 5), (123, 12), (124, 13)]));
    assert_eq!(p.nics.len(), 1, "docker0 has no device and no IRQs");
    assert_eq!(p.nics[0].other_irqs[0].irq, 120);
    assert_cores_disjoint(&p);

    // Shards on the NIC's node only when asked for no more than fit there.
    let p = plan("x86-smt-i40e", |_| {}, Some(2));
    assert_eq!(p.shard_cpus, vec![6, 7]);

    let p = plan("x86-smt-i40e", |a| a.smt_shards = true, None);
    assert_eq!(p.shard_cpus, vec![6, 7, 0, 1, 2, 3, 14, 15, 8, 9, 10, 11]);
    assert_cores_disjoint(&p);

    // More shards than physical cores: SMT siblings before sharing CPUs.
    let p = plan("x86-smt-i40e", |_| {}, Some(8));
    assert_eq!(p.shard_cpus, vec![6, 7, 0, 1, 2, 3, 14, 15]);
    assert!(
        p.warnings.iter().any(|w| w.contains("SMT siblings")),
        "{:?}",
        p.warnings
    );
    assert_cores_disjoint(&p);

    // An explicit IRQ CPU takes its whole physical core away from shards.
    let p = plan("x86-smt-i40e", |a| a.irq_cores = "0-0".into(), None);
    assert_eq!(p.irq_cpus, vec![0]);
    assert!(!p.shard_cpus.contains(&8));
    assert_cores_disjoint(&p);
}

#[test]
fn container_with_cpuset_2_5_leaves_host_irq_cores_alone() {
    let p = plan("container-cpuset-2-5", |_| {}, None);
    assert_eq!(p.machine.online, (0..8).collect::<Vec<_>>());
    assert_eq!(p.machine.usable, vec![2, 3, 4, 5]);
    // The host already sends the ENA queues to CPUs 0-1: nothing to reserve.
    assert!(p.irq_cpus.is_empty());
    assert!(p.irqs.is_empty());
    assert_eq!(p.shard_cpus, vec![2, 3, 4, 5]);
    assert!(
        p.notes.iter().any(|n| n.contains("outside")),
        "{:?}",
        p.notes
    );
    assert!(p
        .machine
        .mask_sources
        .iter()
        .any(|s| s.contains("cpuset.cpus.effective: 2-5")));
}

#[test]
fn virtio_vm_like_the_build_machine() {
    let p = plan("virtio-vm", |_| {}, None);
    assert_eq!(p.machine.usable, vec![0, 1]);
    assert!(p.irq_cpus.is_empty(), "2 CPUs: no IRQ cores");
    assert!(p.irqs.is_empty());
    assert_eq!(p.shard_cpus, vec![0, 1]);
    let nic = &p.nics[0];
    assert_eq!(nic.name, "eth0");
    assert_eq!(nic.device, "virtio2");
    assert_eq!(nic.pci.as_deref(), Some("0000:00:03.0"));
    assert_eq!(nic.driver.as_deref(), Some("virtio_net"));
    let queues: Vec<(u32, &str)> = nic
        .queue_irqs
        .iter()
        .map(|q| (q.irq, q.label.as_str()))
        .collect();
    assert_eq!(
        queues,
        vec![(38, "virtio2-input.0"), (39, "virtio2-output.0")]
    );
    assert_eq!(nic.other_irqs[0].label, "virtio2-config");

    // Tests run several shards on 2-core machines.
    let p = plan("virtio-vm", |_| {}, Some(4));
    assert_eq!(p.shard_cpus, vec![0, 1, 0, 1]);
    assert_eq!(p.warnings.len(), 1);

    // Forcing an IRQ core on 2 CPUs leaves one for shards.
    let p = plan("virtio-vm", |a| a.irq_cores = "1".into(), None);
    assert_eq!(p.irq_cpus, vec![0]);
    assert_eq!(p.shard_cpus, vec![1]);
    assert_eq!(p.irqs, irqs(&[(38, 0), (39, 0)]));
}

#[test]
fn json_has_the_documented_fields() {
    let p = plan("c8g-2xlarge", |_| {}, None);
    let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
    assert_eq!(v["shard_cpus"], serde_json::json!([2, 3, 4, 5, 6, 7]));
    assert_eq!(v["irq_cpus"], serde_json::json!([0, 1]));
    assert_eq!(v["irqs"]["17"], serde_json::json!([0]));
    assert_eq!(v["irqs"]["24"], serde_json::json!([1]));
    assert_eq!(v["irqs"].as_object().unwrap().len(), 8);
    assert_eq!(v["machine"]["source"], "snapshot");
    assert_eq!(v["nics"][0]["queue_irqs"][0]["label"], "ens5-Tx-Rx-0");
    assert!(!p.to_json().contains('\n'));
}

#[test]
fn table_is_readable() {
    let t = plan("c8g-2xlarge", |_| {}, None).table();
    assert!(t.contains("IRQ CPUs:   0-1"), "{t}");
    assert!(t.contains("shard CPUs: 2-7 (6 shard(s))"), "{t}");
    assert!(t.contains("ens5-Tx-Rx-7"), "{t}");
}

/// The plan for the machine the tests run on: whatever its shape, shards land
/// on CPUs this process may use and never on an IRQ core.
#[test]
fn plans_this_machine() {
    let p = make_plan(&PlannerArgs::default(), None).expect("plan for this machine");
    eprintln!("this machine:\n{}", p.table());
    let mask = planner::topology::sched_getaffinity().unwrap();
    assert!(!p.shard_cpus.is_empty());
    for c in p.shard_cpus.iter().chain(&p.irq_cpus) {
        assert!(
            mask.contains(c),
            "CPU {c} outside sched_getaffinity {mask:?}"
        );
    }
    assert_cores_disjoint(&p);
    if p.machine.usable.len() < 4 {
        assert!(p.irq_cpus.is_empty());
        assert_eq!(p.shard_cpus, p.machine.usable);
    }
    let p = make_plan(&PlannerArgs::default(), Some(2 * mask.len() + 1)).unwrap();
    assert_eq!(p.shard_cpus.len(), 2 * mask.len() + 1);
    assert!(!p.warnings.is_empty());
}

/// The flags as the server will see them, flattened into its clap struct.
#[test]
fn flags_parse_with_clap() {
    use clap::Parser;
    #[derive(Parser, Debug)]
    struct Cli {
        #[arg(long)]
        shards: Option<usize>,
        #[command(flatten)]
        planner: PlannerArgs,
    }
    let root = machine("c8g-2xlarge");
    let cli = Cli::try_parse_from([
        "tessera-server".as_ref(),
        "--shards".as_ref(),
        "3".as_ref(),
        "--print-plan".as_ref(),
        "--json".as_ref(),
        "--irq-cores".as_ref(),
        "0-1".as_ref(),
        "--sysfs-root".as_ref(),
        root.join("sys").as_os_str(),
        "--procfs-root".as_ref(),
        root.join("proc").as_os_str(),
    ])
    .unwrap();
    assert!(cli.planner.print_plan && cli.planner.json && !cli.planner.smt_shards);
    let p = make_plan(&cli.planner, cli.shards).unwrap();
    assert_eq!(p.irq_cpus, vec![0, 1]);
    assert_eq!(p.shard_cpus, vec![2, 3, 4]);
    assert_eq!(planner::print_plan_command(&cli.planner, cli.shards), 0);

    let cli = Cli::try_parse_from(["tessera-server"]).unwrap();
    assert_eq!(cli.planner.irq_cores, "auto");
    assert_eq!(cli.planner.irq_cores, PlannerArgs::default().irq_cores);

    let bad = PlannerArgs {
        shard_cpus: Some("99".into()),
        ..snapshot_args("c8g-2xlarge")
    };
    assert_eq!(planner::print_plan_command(&bad, None), 1);
}
