//! `--apply-irq-affinity` against copies of snapshot fixtures in a temp dir
//! (never this machine's /proc/irq), and the container variant whose IRQs
//! are not yet moved off its CPUs.

use std::fs;
use std::path::{Path, PathBuf};

use tessera_server::planner::{
    apply_irq_affinity, apply_irq_affinity_as, make_plan, PlanError, PlannerArgs, Privilege,
};

/// A copy of a fixture machine in a fresh temp dir, removed on drop.
struct Copy {
    root: PathBuf,
}

impl Copy {
    fn of(name: &str, tag: &str) -> Copy {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/machines")
            .join(name);
        let root = std::env::temp_dir().join(format!(
            "tessera-planner-{}-{name}-{tag}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&root);
        copy_tree(&src, &root);
        Copy { root }
    }

    fn args(&self) -> PlannerArgs {
        PlannerArgs {
            sysfs_root: Some(self.root.join("sys")),
            procfs_root: Some(self.root.join("proc")),
            ..PlannerArgs::default()
        }
    }

    fn affinity(&self, irq: u32) -> String {
        fs::read_to_string(self.root.join(format!("proc/irq/{irq}/smp_affinity_list")))
            .unwrap()
            .trim()
            .to_string()
    }

    fn set_affinity(&self, irq: u32, list: &str) {
        fs::write(
            self.root.join(format!("proc/irq/{irq}/smp_affinity_list")),
            format!("{list}\n"),
        )
        .unwrap();
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        let ty = entry.file_type().unwrap();
        if ty.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &to).unwrap();
        } else if ty.is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).unwrap();
        }
    }
}

#[test]
fn applies_the_c8g_plan_and_is_idempotent() {
    let m = Copy::of("c8g-2xlarge", "apply");
    let args = m.args();
    let plan = make_plan(&args, None).unwrap();

    let dry = apply_irq_affinity_as(&plan, &args, Privilege::DryRun).unwrap();
    assert!(dry.dry_run);
    assert_eq!(
        dry.changed.len(),
        6,
        "queues 0 and 1 already sit on CPUs 0 and 1"
    );
    assert_eq!(dry.unchanged, vec![17, 18]);
    assert_eq!(m.affinity(19), "2", "a dry run writes nothing");
    let text = dry.to_string();
    assert!(text.contains("not root, nothing written"), "{text}");
    assert!(
        text.contains("IRQ 19 (ens5-Tx-Rx-2): would set smp_affinity_list 2 -> 0"),
        "{text}"
    );

    let done = apply_irq_affinity_as(&plan, &args, Privilege::Root).unwrap();
    assert!(!done.dry_run);
    assert_eq!(done.changed.len(), 6);
    assert!(done.failed.is_empty(), "{done}");
    for (irq, want) in (17..=24).zip(["0", "1", "0", "1", "0", "1", "0", "1"]) {
        assert_eq!(m.affinity(irq), want, "IRQ {irq}");
    }
    // Lines that are not queues are left alone.
    assert_eq!(m.affinity(16), "0-7");
    assert_eq!(m.affinity(25), "0", "nvme0q1");
    assert!(done
        .to_string()
        .contains("6 changed, 2 already as planned, 0 failed"));

    // Again: nothing left to do.
    let again = apply_irq_affinity_as(&plan, &args, Privilege::Root).unwrap();
    assert!(again.changed.is_empty());
    assert_eq!(again.unchanged.len(), 8);

    // The public entry point decides by euid; as root (CI) it writes.
    let r = apply_irq_affinity(&plan, &args).unwrap();
    assert!(r.changed.is_empty());
}

#[test]
fn warns_about_irqbalance() {
    let m = Copy::of("c8g-2xlarge", "irqbalance");
    fs::create_dir_all(m.root.join("proc/812")).unwrap();
    fs::write(m.root.join("proc/812/comm"), "irqbalance\n").unwrap();
    fs::create_dir_all(m.root.join("proc/813")).unwrap();
    fs::write(m.root.join("proc/813/comm"), "sshd\n").unwrap();
    let args = m.args();
    let plan = make_plan(&args, None).unwrap();
    let r = apply_irq_affinity_as(&plan, &args, Privilege::DryRun).unwrap();
    assert_eq!(r.warnings.len(), 1, "{r}");
    assert!(
        r.warnings[0].contains("irqbalance is running (pid 812)"),
        "{r}"
    );
}

#[test]
fn refuses_to_write_this_machines_proc_for_a_snapshot_plan() {
    let m = Copy::of("c8g-2xlarge", "refuse");
    let plan = make_plan(&m.args(), None).unwrap();
    let args = PlannerArgs {
        sysfs_root: Some(m.root.join("sys")),
        procfs_root: None,
        ..PlannerArgs::default()
    };
    let e = apply_irq_affinity_as(&plan, &args, Privilege::Root).unwrap_err();
    assert!(matches!(e, PlanError::Apply(_)), "{e}");
}

#[test]
fn reports_lines_the_kernel_refuses() {
    let m = Copy::of("c8g-2xlarge", "refused");
    let args = m.args();
    let plan = make_plan(&args, None).unwrap();
    // A line whose file has gone (the IRQ was freed meanwhile).
    fs::remove_dir_all(m.root.join("proc/irq/20")).unwrap();
    let r = apply_irq_affinity_as(&plan, &args, Privilege::Root).unwrap();
    assert_eq!(r.failed.len(), 1, "{r}");
    assert_eq!(r.failed[0].0, 20);
    assert_eq!(r.changed.len(), 5);
}

#[test]
fn container_whose_irqs_still_use_its_cpus_reserves_one() {
    let m = Copy::of("container-cpuset-2-5", "spread");
    for irq in 17..=24 {
        m.set_affinity(irq, "0-7");
    }
    let plan = make_plan(&m.args(), None).unwrap();
    // 4 usable CPUs: one IRQ core, the first of the container's CPUs.
    assert_eq!(plan.irq_cpus, vec![2]);
    assert_eq!(plan.shard_cpus, vec![3, 4, 5]);
    assert!(plan.irqs.values().all(|c| c == &vec![2]));
    assert_eq!(plan.irqs.len(), 8);
}

#[test]
fn snapshot_without_interrupts_plans_no_irq_cores() {
    let m = Copy::of("c8g-2xlarge", "nointr");
    fs::remove_file(m.root.join("proc/interrupts")).unwrap();
    let plan = make_plan(&m.args(), None).unwrap();
    assert!(plan.nics.is_empty());
    assert!(plan.irq_cpus.is_empty());
    assert_eq!(plan.shard_cpus, (0..8).collect::<Vec<_>>());
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("NIC interrupts not planned")),
        "{:?}",
        plan.warnings
    );
}
