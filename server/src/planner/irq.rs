//! Finding the NICs' interrupt lines: `/sys/class/net/*/device` (and, for
//! virtio, the PCI function above the virtio child device) with its
//! `msi_irqs`, the labels in `/proc/interrupts`, and each line's current
//! `/proc/irq/N/smp_affinity_list`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

use super::cpulist;
use super::topology::{read_optional, read_trimmed, Roots};

/// One interrupt line of a NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicIrq {
    pub irq: u32,
    pub label: String,
    /// Queue index for queue (Rx/Tx) lines; `None` for management, config,
    /// link and other non-queue lines.
    pub queue: Option<u32>,
    /// Current `smp_affinity_list`, when readable.
    pub current: Option<Vec<usize>>,
}

/// A network interface backed by a device with interrupt lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub name: String,
    /// Name of the device `device` points at (`0000:00:05.0`, `virtio2`).
    pub device: String,
    /// The PCI function holding the MSI vectors, when found.
    pub pci: Option<String>,
    pub driver: Option<String>,
    /// NUMA node of the device; `None` when sysfs says -1 or nothing.
    pub numa_node: Option<usize>,
    pub queue_irqs: Vec<NicIrq>,
    pub other_irqs: Vec<NicIrq>,
}

/// One line of `/proc/interrupts` with a numeric IRQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterruptLine {
    pub irq: u32,
    pub label: String,
}

/// Parses `/proc/interrupts`: keeps numbered lines, with their label (the
/// text after the controller, hardware IRQ and trigger columns).
pub fn parse_interrupts(text: &str) -> Vec<InterruptLine> {
    let mut lines = text.lines();
    let ncpus = lines
        .next()
        .map(|h| {
            h.split_whitespace()
                .filter(|t| t.starts_with("CPU"))
                .count()
        })
        .unwrap_or(0);
    let mut out = Vec::new();
    for line in lines {
        let Some((num, rest)) = line.trim_start().split_once(':') else {
            continue;
        };
        let Ok(irq) = num.trim().parse::<u32>() else {
            continue;
        };
        let tokens: Vec<&str> = rest.split_whitespace().skip(ncpus).collect();
        if tokens.is_empty() {
            continue;
        }
        // x86: `PCI-MSIX-0000:00:03.0 1-edge virtio2-input.0`;
        // arm64: `ITS-MSI 81921 Edge ens5-Tx-Rx-0`. The label follows the
        // trigger column; it may hold blanks (`ahci[0000:00:1f.2], foo`).
        let trigger = tokens.iter().position(|t| {
            let t = t.to_ascii_lowercase();
            t == "edge" || t == "level" || t.ends_with("-edge") || t.ends_with("-level")
        });
        let label = match trigger {
            Some(i) if i + 1 < tokens.len() => tokens[i + 1..].join(" "),
            Some(_) => continue,
            None => tokens[tokens.len() - 1].to_string(),
        };
        out.push(InterruptLine { irq, label });
    }
    out
}

/// The queue index a NIC interrupt label names, or `None` for lines that are
/// not Rx/Tx queues. Knows the usual drivers:
/// ENA `ens5-Tx-Rx-3`; ixgbe `eth0-TxRx-3` (or `eth0-rx-3`/`eth0-tx-3`);
/// i40e/ice `i40e-eth0-TxRx-3`, `ice-eth0-TxRx-3`; mlx5 `mlx5_comp3@pci:…`;
/// virtio `virtio2-input.3`/`virtio2-output.3`; bnx2x `eth0-fp-3`.
/// Not queues: `ena-mgmnt@pci:…`, `mlx5_async0@pci:…`, `virtio2-config`,
/// `i40e-0000:5e:00.0:misc`, ixgbe's bare `eth0` link line.
pub fn queue_index(label: &str) -> Option<u32> {
    let l = label.to_ascii_lowercase();
    let l = l.split('@').next().unwrap_or("");
    if let Some(rest) = l.strip_prefix("mlx5_comp") {
        return rest.parse().ok();
    }
    let digits_at = l.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits_at == l.len() || digits_at == 0 {
        return None;
    }
    let n: u32 = l[digits_at..].parse().ok()?;
    let head = &l[..digits_at];
    let head = head
        .strip_suffix('-')
        .or_else(|| head.strip_suffix('.'))
        .or_else(|| head.strip_suffix('_'))?;
    const QUEUE_WORDS: [&str; 10] = [
        "tx-rx", "txrx", "rx-tx", "rxtx", "rx", "tx", "input", "output", "fp", "combined",
    ];
    QUEUE_WORDS
        .iter()
        .find(|w| {
            head.strip_suffix(**w)
                .is_some_and(|before| before.is_empty() || before.ends_with(['-', '_', '.']))
        })
        .map(|_| n)
}

/// Resolves `path` (which may be or contain relative symlinks) inside the
/// sysfs root. Absolute link targets (`/sys/...`) are re-rooted under `root`
/// so that a snapshot never resolves into the live `/sys`.
fn resolve_in(root: &Path, path: &Path) -> Option<PathBuf> {
    let meta = fs::symlink_metadata(path).ok()?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).ok()?;
        let joined = if target.is_absolute() {
            let rel: PathBuf = target
                .components()
                .filter(|c| !matches!(c, Component::RootDir))
                .skip_while(|c| c.as_os_str() == "sys")
                .collect();
            root.join(rel)
        } else {
            // Let the OS walk `..` through any symlinked parents.
            fs::canonicalize(path.parent()?).ok()?.join(target)
        };
        return fs::canonicalize(joined).ok();
    }
    if meta.is_file() {
        // A snapshot made by a tool that cannot store links may hold the
        // link's target as text instead.
        let target = read_optional(path)?;
        return resolve_in(root, &root_path(root, &target, path));
    }
    fs::canonicalize(path).ok()
}

fn root_path(root: &Path, target: &str, from: &Path) -> PathBuf {
    let t = Path::new(target);
    if t.is_absolute() {
        let rel: PathBuf = t
            .components()
            .filter(|c| !matches!(c, Component::RootDir))
            .skip_while(|c| c.as_os_str() == "sys")
            .collect();
        root.join(rel)
    } else {
        from.parent().unwrap_or(root).join(t)
    }
}

fn msi_irqs(dir: &Path) -> Option<BTreeSet<u32>> {
    let entries = fs::read_dir(dir.join("msi_irqs")).ok()?;
    Some(
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect(),
    )
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Does `label` name interface `ifname` or one of its devices?
fn label_matches(label: &str, ifname: &str, device: &str, pci: Option<&str>) -> bool {
    let l = label;
    let by_if =
        l == ifname || l.starts_with(&format!("{ifname}-")) || l.contains(&format!("-{ifname}-"));
    let by_virtio = device.starts_with("virtio") && l.starts_with(&format!("{device}-"));
    let by_pci = pci.is_some_and(|p| l.contains(p)) || (device.contains(':') && l.contains(device));
    by_if || by_virtio || by_pci
}

/// Finds the NICs with interrupt lines and sorts their lines into queue and
/// other lines. Interfaces without a `device` (lo, bridges, veth, bonds) are
/// skipped; so are NICs with no interrupt line at all.
///
/// Without a readable `interrupts` file (some sandboxes hide it) there are
/// no NICs to plan for; the returned warning says so.
pub fn discover(roots: &Roots) -> (Vec<Nic>, Option<String>) {
    let interrupts_path = roots.procfs.join("interrupts");
    let interrupts = match read_trimmed(&interrupts_path) {
        Ok(text) => parse_interrupts(&text),
        Err(e) => return (Vec::new(), Some(format!("{e}: NIC interrupts not planned"))),
    };

    let net = roots.sysfs.join("class/net");
    let mut names: Vec<String> = match fs::read_dir(&net) {
        Ok(entries) => entries.flatten().map(|e| name_of(&e.path())).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();

    let mut nics = Vec::new();
    let mut claimed: BTreeSet<u32> = BTreeSet::new();
    for name in names {
        let Some(iface) = resolve_in(&roots.sysfs, &net.join(&name)) else {
            continue;
        };
        let Some(dev) = resolve_in(&roots.sysfs, &iface.join("device")) else {
            continue;
        };
        let device = name_of(&dev);
        // virtio-net: `device` is the virtio child (`virtio2`); the MSI-X
        // vectors and NUMA node belong to the PCI function above it.
        let (msi_dir, msi) = match msi_irqs(&dev) {
            Some(m) => (Some(dev.clone()), Some(m)),
            None => match dev
                .parent()
                .and_then(|p| msi_irqs(p).map(|m| (p.to_path_buf(), m)))
            {
                Some((p, m)) => (Some(p), Some(m)),
                None => (None, None),
            },
        };
        let pci = msi_dir.as_deref().map(name_of).filter(|n| n.contains(':'));
        let numa_node = read_optional(&dev.join("numa_node"))
            .or_else(|| {
                msi_dir
                    .as_deref()
                    .and_then(|d| read_optional(&d.join("numa_node")))
            })
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|n| usize::try_from(n).ok());
        let driver = fs::read_link(dev.join("driver"))
            .ok()
            .map(|p| name_of(&p))
            .filter(|d| !d.is_empty());

        let mut queue_irqs = Vec::new();
        let mut other_irqs = Vec::new();
        for line in &interrupts {
            let mine = msi.as_ref().is_some_and(|m| m.contains(&line.irq))
                || label_matches(&line.label, &name, &device, pci.as_deref());
            if !mine || claimed.contains(&line.irq) {
                continue;
            }
            claimed.insert(line.irq);
            let current = read_optional(
                &roots
                    .procfs
                    .join(format!("irq/{}/smp_affinity_list", line.irq)),
            )
            .and_then(|t| cpulist::parse(&t).ok());
            let irq = NicIrq {
                irq: line.irq,
                label: line.label.clone(),
                queue: queue_index(&line.label),
                current,
            };
            if irq.queue.is_some() {
                queue_irqs.push(irq);
            } else {
                other_irqs.push(irq);
            }
        }
        if queue_irqs.is_empty() && other_irqs.is_empty() {
            continue;
        }
        queue_irqs.sort_by_key(|i| (i.queue, i.irq));
        nics.push(Nic {
            name,
            device,
            pci,
            driver,
            numa_node,
            queue_irqs,
            other_irqs,
        });
    }
    (nics, None)
}

/// The NUMA node the NICs' queues live on: the node of the NIC with the most
/// queue lines, when known. Also says whether NICs disagree.
pub fn nic_node(nics: &[Nic]) -> (Option<usize>, bool) {
    let mut per_node: BTreeMap<usize, usize> = BTreeMap::new();
    for nic in nics.iter().filter(|n| !n.queue_irqs.is_empty()) {
        if let Some(node) = nic.numa_node {
            *per_node.entry(node).or_default() += nic.queue_irqs.len();
        }
    }
    let best = per_node
        .iter()
        .max_by_key(|(node, count)| (**count, std::cmp::Reverse(**node)))
        .map(|(n, _)| *n);
    (best, per_node.len() > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_labels_of_common_drivers() {
        assert_eq!(queue_index("ens5-Tx-Rx-7"), Some(7));
        assert_eq!(queue_index("ena-mgmnt@pci:0000:00:05.0"), None);
        assert_eq!(queue_index("eth0-TxRx-3"), Some(3));
        assert_eq!(queue_index("eth0-rx-2"), Some(2));
        assert_eq!(queue_index("eth0-tx-2"), Some(2));
        assert_eq!(queue_index("eth0"), None);
        assert_eq!(queue_index("i40e-enp94s0f0-TxRx-1"), Some(1));
        assert_eq!(queue_index("i40e-0000:5e:00.0:misc"), None);
        assert_eq!(queue_index("ice-ens1f0-TxRx-12"), Some(12));
        assert_eq!(queue_index("mlx5_comp5@pci:0000:08:00.0"), Some(5));
        assert_eq!(queue_index("mlx5_async0@pci:0000:08:00.0"), None);
        assert_eq!(queue_index("virtio2-input.0"), Some(0));
        assert_eq!(queue_index("virtio2-output.3"), Some(3));
        assert_eq!(queue_index("virtio2-config"), None);
        assert_eq!(queue_index("nvme0q1"), None);
        assert_eq!(queue_index("eth0-fp-4"), Some(4));
    }

    #[test]
    fn parses_x86_and_arm_interrupts() {
        let x86 = "           CPU0       CPU1       \n \
                   26:          0         14  IO-APIC   4-edge      ttyS0\n \
                   38:          0       2439 PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0\n\
                   NMI:          0          0   Non-maskable interrupts\n";
        let lines = parse_interrupts(x86);
        assert_eq!(
            lines,
            vec![
                InterruptLine {
                    irq: 26,
                    label: "ttyS0".into()
                },
                InterruptLine {
                    irq: 38,
                    label: "virtio2-input.0".into()
                },
            ]
        );
        let arm = "           CPU0       CPU1\n \
                   11:     123     456     GICv3  27 Level     arch_timer\n \
                   36:       5       0   ITS-MSI 81921 Edge      ens5-Tx-Rx-0\n";
        let lines = parse_interrupts(arm);
        assert_eq!(
            lines[1],
            InterruptLine {
                irq: 36,
                label: "ens5-Tx-Rx-0".into()
            }
        );
    }

    #[test]
    fn labels_belong_to_their_interface_only() {
        assert!(label_matches("eth1-TxRx-0", "eth1", "0000:01:00.0", None));
        assert!(!label_matches("eth10-TxRx-0", "eth1", "0000:01:00.1", None));
        assert!(label_matches("i40e-eth1-TxRx-0", "eth1", "x", None));
        assert!(label_matches(
            "mlx5_comp0@pci:0000:08:00.0",
            "ens6",
            "0000:08:00.0",
            None
        ));
        assert!(label_matches(
            "virtio2-input.0",
            "eth0",
            "virtio2",
            Some("0000:00:03.0")
        ));
        assert!(!label_matches(
            "virtio1-req.0",
            "eth0",
            "virtio2",
            Some("0000:00:03.0")
        ));
    }
}
