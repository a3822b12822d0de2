//! Reading the machine: online CPUs and their topology from sysfs, and the
//! set of CPUs this process may use (affinity mask and cgroup cpuset).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::cpulist;
use super::PlanError;

/// Where the planner reads from: the live machine, or a captured snapshot.
#[derive(Debug, Clone)]
pub struct Roots {
    pub sysfs: PathBuf,
    pub procfs: PathBuf,
    /// True when either root was given on the command line: the plan is for
    /// the machine the files were captured on, not necessarily this one.
    pub snapshot: bool,
}

impl Roots {
    pub fn new(sysfs: Option<&Path>, procfs: Option<&Path>) -> Roots {
        Roots {
            sysfs: sysfs.map_or_else(|| PathBuf::from("/sys"), Path::to_path_buf),
            procfs: procfs.map_or_else(|| PathBuf::from("/proc"), Path::to_path_buf),
            snapshot: sysfs.is_some() || procfs.is_some(),
        }
    }
}

/// One logical CPU as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpu {
    pub id: usize,
    pub package: Option<usize>,
    pub core_id: Option<usize>,
    /// SMT siblings including itself (`core_cpus_list`, else
    /// `thread_siblings_list`), limited to online CPUs; `[id]` when unknown.
    pub siblings: Vec<usize>,
    /// CPUs sharing this CPU's L3 (`cache/index3/shared_cpu_list`), if any.
    pub l3: Option<Vec<usize>>,
    pub node: Option<usize>,
}

/// The online CPUs of a machine and how they are arranged.
#[derive(Debug, Clone)]
pub struct Topology {
    pub online: Vec<usize>,
    pub cpus: BTreeMap<usize, Cpu>,
    /// NUMA node -> its CPUs (online ones only). Empty when sysfs has no
    /// `node/` directory (non-NUMA kernels).
    pub nodes: BTreeMap<usize, Vec<usize>>,
}

/// A physical core: the usable CPUs among one set of SMT siblings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Core {
    /// Usable CPUs of this core, ascending; never empty.
    pub cpus: Vec<usize>,
    pub package: Option<usize>,
    pub node: Option<usize>,
    /// Lowest CPU of the L3 domain, used as the domain's name.
    pub l3: Option<usize>,
}

impl Core {
    pub fn first(&self) -> usize {
        self.cpus[0]
    }
}

pub(crate) fn read_trimmed(path: &Path) -> Result<String, PlanError> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| PlanError::Read {
            path: path.to_path_buf(),
            error: e.to_string(),
        })
}

pub(crate) fn read_optional(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

pub(crate) fn read_cpulist(path: &Path) -> Result<Vec<usize>, PlanError> {
    let text = read_trimmed(path)?;
    cpulist::parse(&text).map_err(|msg| PlanError::Parse {
        path: path.to_path_buf(),
        msg,
    })
}

fn read_optional_cpulist(path: &Path) -> Option<Vec<usize>> {
    read_optional(path).and_then(|t| cpulist::parse(&t).ok())
}

fn read_optional_number(path: &Path) -> Option<usize> {
    read_optional(path).and_then(|t| t.parse().ok())
}

impl Topology {
    /// Reads `devices/system/cpu` and `devices/system/node` under `sysfs`.
    /// Only the `online` file is required; any per-CPU file that is missing
    /// is treated as "unknown" (each CPU then counts as its own core).
    pub fn read(sysfs: &Path) -> Result<Topology, PlanError> {
        let cpu_dir = sysfs.join("devices/system/cpu");
        let online = read_cpulist(&cpu_dir.join("online"))?;
        if online.is_empty() {
            return Err(PlanError::Parse {
                path: cpu_dir.join("online"),
                msg: "no online CPUs".into(),
            });
        }

        let mut nodes = BTreeMap::new();
        if let Ok(entries) = fs::read_dir(sysfs.join("devices/system/node")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(n) = name.strip_prefix("node").and_then(|n| n.parse().ok()) else {
                    continue;
                };
                if let Some(list) = read_optional_cpulist(&entry.path().join("cpulist")) {
                    nodes.insert(n, cpulist::intersect(&list, &online));
                }
            }
        }

        let mut cpus = BTreeMap::new();
        for &id in &online {
            let dir = cpu_dir.join(format!("cpu{id}"));
            let topo = dir.join("topology");
            let siblings = read_optional_cpulist(&topo.join("core_cpus_list"))
                .or_else(|| read_optional_cpulist(&topo.join("thread_siblings_list")))
                .map(|s| cpulist::intersect(&s, &online))
                .filter(|s| s.contains(&id))
                .unwrap_or_else(|| vec![id]);
            let node = nodes
                .iter()
                .find(|(_, list)| list.contains(&id))
                .map(|(n, _)| *n);
            cpus.insert(
                id,
                Cpu {
                    id,
                    package: read_optional_number(&topo.join("physical_package_id")),
                    core_id: read_optional_number(&topo.join("core_id")),
                    siblings,
                    l3: read_optional_cpulist(&dir.join("cache/index3/shared_cpu_list"))
                        .filter(|l| !l.is_empty()),
                    node,
                },
            );
        }
        Ok(Topology {
            online,
            cpus,
            nodes,
        })
    }

    /// A machine known only by its CPU numbers: each CPU its own core, one
    /// package, no NUMA or L3 information.
    pub fn flat(cpus: &[usize]) -> Topology {
        Topology {
            online: cpus.to_vec(),
            cpus: cpus
                .iter()
                .map(|&id| {
                    let cpu = Cpu {
                        id,
                        package: None,
                        core_id: None,
                        siblings: vec![id],
                        l3: None,
                        node: None,
                    };
                    (id, cpu)
                })
                .collect(),
            nodes: BTreeMap::new(),
        }
    }

    /// Groups `usable` CPUs into physical cores, ordered by their lowest CPU.
    pub fn cores(&self, usable: &[usize]) -> Vec<Core> {
        let mut by_key: BTreeMap<Vec<usize>, Core> = BTreeMap::new();
        for &id in usable {
            let Some(cpu) = self.cpus.get(&id) else {
                continue;
            };
            let key = cpu.siblings.clone();
            let core = by_key.entry(key).or_insert_with(|| Core {
                cpus: Vec::new(),
                package: cpu.package,
                node: cpu.node,
                l3: cpu.l3.as_ref().and_then(|l| l.first().copied()),
            });
            core.cpus.push(id);
        }
        let mut cores: Vec<Core> = by_key.into_values().collect();
        for c in &mut cores {
            c.cpus.sort_unstable();
        }
        cores.sort_by_key(Core::first);
        cores
    }

    /// Packages seen among the online CPUs (1 when sysfs does not say).
    pub fn packages(&self) -> usize {
        let mut p: Vec<usize> = self.cpus.values().filter_map(|c| c.package).collect();
        p.sort_unstable();
        p.dedup();
        p.len().max(1)
    }

    /// Distinct L3 domains among the online CPUs (0 when not exposed).
    pub fn l3_domains(&self) -> usize {
        let mut d: Vec<usize> = self
            .cpus
            .values()
            .filter_map(|c| c.l3.as_ref().and_then(|l| l.first().copied()))
            .collect();
        d.sort_unstable();
        d.dedup();
        d.len()
    }

    /// Largest number of online SMT siblings on one core.
    pub fn threads_per_core(&self) -> usize {
        self.cpus
            .values()
            .map(|c| c.siblings.len())
            .max()
            .unwrap_or(1)
    }
}

/// The CPUs this process may run on, and where that came from.
#[derive(Debug, Clone)]
pub struct Mask {
    pub usable: Vec<usize>,
    /// Human-readable sources, e.g. `sched_getaffinity: 0-7`.
    pub sources: Vec<String>,
}

/// Works out the usable CPUs: online CPUs, narrowed by the process's affinity
/// mask and its cgroup cpuset.
///
/// Live: `sched_getaffinity(0)` and the cgroup of `/proc/self`.
/// Snapshot: the snapshot's `proc/self/status` `Cpus_allowed_list` and cgroup
/// cpuset files when they were captured, else the snapshot's online CPUs (the
/// running process's own mask belongs to another machine).
pub fn read_mask(roots: &Roots, topo: &Topology) -> Mask {
    let mut usable = topo.online.clone();
    let mut sources = vec![format!("online: {}", cpulist::format(&topo.online))];

    if roots.snapshot {
        let status = roots.procfs.join("self/status");
        if let Some(list) = read_optional(&status).and_then(|s| cpus_allowed_list(&s)) {
            sources.push(format!("Cpus_allowed_list: {}", cpulist::format(&list)));
            usable = cpulist::intersect(&usable, &list);
        }
    } else if let Some(list) = sched_getaffinity() {
        sources.push(format!("sched_getaffinity: {}", cpulist::format(&list)));
        usable = cpulist::intersect(&usable, &list);
    }

    if let Some((what, list)) = cgroup_cpuset(roots) {
        sources.push(format!("{what}: {}", cpulist::format(&list)));
        usable = cpulist::intersect(&usable, &list);
    }
    Mask { usable, sources }
}

fn cpus_allowed_list(status: &str) -> Option<Vec<usize>> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .and_then(|v| cpulist::parse(v).ok())
}

/// The live process's affinity mask.
pub fn sched_getaffinity() -> Option<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set, and the
    // kernel writes at most size_of::<cpu_set_t>() bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
        Some((0..max).filter(|&c| libc::CPU_ISSET(c, &set)).collect())
    }
}

/// The cgroup cpuset that bounds this process, if one can be found:
/// cgroup v2 `cpuset.cpus.effective`, else v1 `cpuset.effective_cpus` /
/// `cpuset.cpus`. Walks from the process's cgroup up to the mount root, since
/// the file only exists where the controller is enabled and, in a container,
/// the path in `/proc/self/cgroup` may be relative to the host's hierarchy.
fn cgroup_cpuset(roots: &Roots) -> Option<(String, Vec<usize>)> {
    let text = read_optional(&roots.procfs.join("self/cgroup"))?;
    let cg = roots.sysfs.join("fs/cgroup");
    let mut tries: Vec<(&str, PathBuf, &str)> = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(hier), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if hier == "0" && ctrls.is_empty() {
            for base in [cg.clone(), cg.join("unified")] {
                tries.push((
                    "cgroup v2 cpuset.cpus.effective",
                    base.join(rel),
                    "cpuset.cpus.effective",
                ));
            }
        } else if ctrls.split(',').any(|c| c == "cpuset") {
            let base = cg.join("cpuset");
            tries.push((
                "cgroup v1 cpuset.effective_cpus",
                base.join(rel),
                "cpuset.effective_cpus",
            ));
            tries.push(("cgroup v1 cpuset.cpus", base.join(rel), "cpuset.cpus"));
        }
    }
    // Prefer cgroup v2 when both hierarchies name a cpuset.
    tries.sort_by_key(|(what, _, _)| !what.contains("v2"));
    for (what, dir, file) in tries {
        let mut d = dir.as_path();
        loop {
            if let Some(list) = read_optional_cpulist(&d.join(file)).filter(|l| !l.is_empty()) {
                return Some((what.to_string(), list));
            }
            if d == cg || !d.starts_with(&cg) {
                break;
            }
            match d.parent() {
                Some(p) => d = p,
                None => break,
            }
        }
    }
    None
}
