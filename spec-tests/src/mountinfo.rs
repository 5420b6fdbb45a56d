//! Parsing /proc/<pid>/mountinfo text (as printed from inside a container).

/// One line of mountinfo.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Path inside the mounted filesystem that is mounted here.
    pub root: String,
    pub mount_point: String,
    /// Per-mount options (ro, nosuid, ...).
    pub opts: Vec<String>,
    /// Optional fields: shared:N, master:N, ...
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    /// Per-superblock options (size=..., mode=...).
    pub super_opts: Vec<String>,
}

impl Mount {
    pub fn has_opt(&self, o: &str) -> bool {
        self.opts.iter().any(|x| x == o)
    }

    pub fn has_super_opt(&self, o: &str) -> bool {
        self.super_opts.iter().any(|x| x == o)
    }
}

/// Parses every line that looks like mountinfo; other lines (mixed-in output) are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    let split = |s: &str| s.split(',').map(str::to_owned).collect::<Vec<_>>();
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 6 || post.len() < 3 || pre[0].parse::<u64>().is_err() {
                return None;
            }
            Some(Mount {
                root: pre[3].to_owned(),
                mount_point: pre[4].to_owned(),
                opts: split(pre[5]),
                optional: pre[6..].iter().map(|s| s.to_string()).collect(),
                fstype: post[0].to_owned(),
                source: post[1].to_owned(),
                super_opts: split(post[2]),
            })
        })
        .collect()
}

/// The last (topmost) mount at `mount_point`.
#[track_caller]
pub fn at<'a>(mounts: &'a [Mount], mount_point: &str) -> &'a Mount {
    mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == mount_point)
        .unwrap_or_else(|| panic!("nothing mounted at {mount_point}: {mounts:#?}"))
}
