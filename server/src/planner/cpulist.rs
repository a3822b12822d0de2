//! Kernel CPU list syntax (`0-3,8,10-11`), as used by sysfs `*_list` files,
//! `/proc/*/status` `Cpus_allowed_list`, cgroup cpuset files and
//! `/proc/irq/N/smp_affinity_list`.

/// Parses a CPU list into a sorted, de-duplicated vector.
/// Accepts blanks around items and a trailing newline; the empty string is the
/// empty set. Also accepts the `a-b:stride/group` form the kernel allows
/// (`0-7:2/4`), though nothing here is likely to hand it over.
pub fn parse(text: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for item in text.trim().split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (range, stride) = match item.split_once(':') {
            Some((r, s)) => {
                let (used, group) = s
                    .split_once('/')
                    .ok_or_else(|| format!("bad CPU range {item:?}"))?;
                (r, Some((num(used, item)?, num(group, item)?)))
            }
            None => (item, None),
        };
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (num(a, item)?, num(b, item)?),
            None => {
                let n = num(range, item)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(format!("bad CPU range {item:?} (start above end)"));
        }
        if hi > 65_535 {
            return Err(format!("CPU number too large in {item:?}"));
        }
        match stride {
            None => out.extend(lo..=hi),
            Some((used, group)) => {
                if group == 0 || used == 0 || used > group {
                    return Err(format!("bad CPU range {item:?}"));
                }
                let mut base = lo;
                while base <= hi {
                    out.extend((base..base + used).filter(|c| *c <= hi));
                    base += group;
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn num(s: &str, item: &str) -> Result<usize, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("bad CPU number in {item:?}"))
}

/// Formats CPUs in the kernel's compact form: `0-3,8,10-11`. Empty input
/// gives the empty string. The input need not be sorted.
pub fn format(cpus: &[usize]) -> String {
    let mut v = cpus.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if end == start {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

/// `a ∩ b`, both sorted.
pub fn intersect(a: &[usize], b: &[usize]) -> Vec<usize> {
    a.iter().copied().filter(|c| b.contains(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_forms() {
        assert_eq!(parse("0-3,8,10-11\n").unwrap(), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse("").unwrap(), Vec::<usize>::new());
        assert_eq!(parse(" 5 ").unwrap(), vec![5]);
        assert_eq!(parse("3,1,1").unwrap(), vec![1, 3]);
        assert_eq!(parse("0-7:2/4").unwrap(), vec![0, 1, 4, 5]);
        assert!(parse("3-1").is_err());
        assert!(parse("a").is_err());
        assert!(parse("1-").is_err());
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(format(&[]), "");
        assert_eq!(format(&[5, 4]), "4-5");
        assert_eq!(format(&[7]), "7");
    }
}
