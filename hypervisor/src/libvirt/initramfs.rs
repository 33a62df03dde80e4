//! The initramfs a QEMU twin host boots: made at run time from what this
//! machine has (no downloads), written as a `newc` cpio archive by gemelo.
//!
//! Contents: `/bin/busybox` (Debian's busybox-static: the shell and every
//! applet the init uses), the decoy binary (`gemelo-decoy`) and the glibc
//! libraries `ldd` lists for it, the kernel modules of the NIC and of the
//! event channel (virtio-net and virtio-console are modules in Debian's
//! kernel) with the `insmod` lines in dependency order
//! (`/gm/modules.sh`), `/dev/console`, and per host the generated `/init` plus
//! the files its launches need (the decoy spec under `/gm`). The archive is
//! not compressed: ~10 MB, which a 128 MiB guest unpacks comfortably, and no
//! compressor is needed. Listing the entries is pure (unit-tested); only
//! `write_newc` reads the source files.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The modules the guest's devices need, by name: its NIC (virtio-net on
/// virtio-pci) and its event channel (a virtio-serial port).
pub const GUEST_MODULES: [&str; 3] = ["virtio_pci", "virtio_net", "virtio_console"];

/// One member of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the archive, without a leading '/'.
    pub path: String,
    pub mode: u32,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// A file copied from this machine (symlinks followed).
    Copy(PathBuf),
    Bytes(Vec<u8>),
    CharDevice {
        major: u32,
        minor: u32,
    },
}

impl Entry {
    fn dir(path: &str) -> Entry {
        Entry {
            path: path.into(),
            mode: 0o755,
            kind: Kind::Dir,
        }
    }
    fn copy(path: &str, source: &Path, mode: u32) -> Entry {
        Entry {
            path: path.trim_start_matches('/').into(),
            mode,
            kind: Kind::Copy(source.into()),
        }
    }
    fn bytes(path: &str, data: Vec<u8>, mode: u32) -> Entry {
        Entry {
            path: path.trim_start_matches('/').into(),
            mode,
            kind: Kind::Bytes(data),
        }
    }
}

/// The libraries in `ldd` output (`name => /path (addr)` and the loader's
/// own `/path (addr)` line), in order; `linux-vdso` has no file.
pub fn parse_ldd(output: &str) -> Vec<PathBuf> {
    output
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The `.ko` files (relative to `/lib/modules/VERSION/`) that loading
/// `wanted` needs, in an order `insmod` accepts: each module's dependencies
/// (as `modules.dep` lists them) before it. Built-in modules are absent from
/// `modules.dep` and are skipped.
pub fn module_load_order(modules_dep: &str, wanted: &[&str]) -> Vec<String> {
    let deps: BTreeMap<&str, Vec<&str>> = modules_dep
        .lines()
        .filter_map(|l| {
            let (m, d) = l.split_once(':')?;
            Some((m.trim(), d.split_whitespace().collect()))
        })
        .collect();
    let by_name = |name: &str| {
        deps.keys()
            .find(|k| module_name(k) == name.replace('-', "_"))
            .copied()
    };
    fn visit<'a>(
        m: &'a str,
        deps: &BTreeMap<&'a str, Vec<&'a str>>,
        seen: &mut BTreeSet<&'a str>,
        out: &mut Vec<String>,
    ) {
        if !seen.insert(m) {
            return;
        }
        // modules.dep lists a module's dependencies so that the last loads first.
        for d in deps.get(m).into_iter().flatten().rev() {
            visit(d, deps, seen, out);
        }
        out.push(m.to_owned());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for w in wanted {
        if let Some(m) = by_name(w) {
            visit(m, &deps, &mut seen, &mut out);
        }
    }
    out
}

/// `kernel/drivers/net/virtio_net.ko` → `virtio_net`.
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

/// What every QEMU twin host's initramfs holds.
pub struct Base<'a> {
    pub busybox: &'a Path,
    /// The decoy binary (ideally stripped) and where the init calls it.
    pub decoy: &'a Path,
    pub decoy_at: &'a str,
    pub libraries: &'a [PathBuf],
    /// `/lib/modules/VERSION`.
    pub modules_dir: &'a Path,
    /// From `module_load_order`.
    pub modules: &'a [String],
}

/// The entries shared by every host, directories first.
pub fn base_entries(b: &Base<'_>) -> Vec<Entry> {
    let mut dirs: BTreeSet<String> = [
        "bin",
        "sbin",
        "dev",
        "etc",
        "gm",
        "proc",
        "sys",
        "tmp",
        "run",
        "root",
        "usr",
        "usr/bin",
        "usr/sbin",
        "lib",
        "lib/modules",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let mut files = vec![
        Entry::copy("bin/busybox", b.busybox, 0o755),
        Entry::copy(b.decoy_at, b.decoy, 0o755),
        Entry {
            path: "dev/console".into(),
            mode: 0o600,
            kind: Kind::CharDevice { major: 5, minor: 1 },
        },
        Entry::bytes("etc/hosts", b"127.0.0.1\tlocalhost\n".to_vec(), 0o644),
    ];
    for lib in b.libraries {
        let at = lib.display().to_string();
        files.push(Entry::copy(&at, lib, 0o755));
    }
    let mut script = String::new();
    for m in b.modules {
        let name = m.rsplit('/').next().unwrap_or(m);
        files.push(Entry::copy(
            &format!("lib/modules/{name}"),
            &b.modules_dir.join(m),
            0o644,
        ));
        script.push_str(&format!("$bb insmod /lib/modules/{name}\n"));
    }
    files.push(Entry::bytes("gm/modules.sh", script.into_bytes(), 0o644));
    for f in &files {
        add_parents(&mut dirs, &f.path);
    }
    let mut out: Vec<Entry> = dirs.iter().map(|d| Entry::dir(d)).collect();
    out.extend(files);
    out
}

/// One host's own entries: its `/init` and the files its launches place
/// (absolute paths as they are, relative ones under `/gm`).
pub fn host_entries(init: &str, files: &[(PathBuf, Vec<u8>, u32)]) -> Vec<Entry> {
    let mut dirs = BTreeSet::new();
    let mut out = vec![Entry::bytes("init", init.as_bytes().to_vec(), 0o755)];
    for (path, data, mode) in files {
        let at = if path.is_absolute() {
            path.display().to_string()
        } else {
            format!("gm/{}", path.display())
        };
        let e = Entry::bytes(&at, data.clone(), *mode);
        add_parents(&mut dirs, &e.path);
        out.push(e);
    }
    let mut all: Vec<Entry> = dirs.iter().map(|d| Entry::dir(d)).collect();
    all.append(&mut out);
    all
}

fn add_parents(dirs: &mut BTreeSet<String>, path: &str) {
    let mut p = Path::new(path).parent();
    while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
        dirs.insert(d.display().to_string());
        p = d.parent();
    }
}

/// Appends `entries` to `out` as `newc` members (no trailer: see `trailer`).
/// A member already in the archive may appear again: the later one wins.
pub fn write_newc(out: &mut Vec<u8>, entries: &[Entry], ino: &mut u32) -> std::io::Result<()> {
    for e in entries {
        let (mode, data, rdev) = match &e.kind {
            Kind::Dir => (0o040000 | e.mode, Vec::new(), (0, 0)),
            Kind::Copy(src) => (
                0o100000 | e.mode,
                std::fs::read(src).map_err(|err| {
                    std::io::Error::new(err.kind(), format!("{}: {err}", src.display()))
                })?,
                (0, 0),
            ),
            Kind::Bytes(b) => (0o100000 | e.mode, b.clone(), (0, 0)),
            Kind::CharDevice { major, minor } => (0o020000 | e.mode, Vec::new(), (*major, *minor)),
        };
        *ino += 1;
        member(out, &e.path, mode, *ino, &data, rdev)?;
    }
    Ok(())
}

/// The end of an archive.
pub fn trailer(out: &mut Vec<u8>) -> std::io::Result<()> {
    member(out, "TRAILER!!!", 0, 0, &[], (0, 0))
}

fn member(
    out: &mut Vec<u8>,
    name: &str,
    mode: u32,
    ino: u32,
    data: &[u8],
    rdev: (u32, u32),
) -> std::io::Result<()> {
    let nlink = if mode & 0o040000 != 0 { 2 } else { 1 };
    write!(
        out,
        "070701{ino:08X}{mode:08X}{:08X}{:08X}{nlink:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
        0, // uid
        0, // gid
        0, // mtime
        data.len(),
        0, // dev major
        0, // dev minor
        rdev.0,
        rdev.1,
        name.len() + 1,
        0, // check
    )?;
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
    Ok(())
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/e1000/e1000.ko:
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
";

    #[test]
    fn modules_load_after_their_dependencies() {
        let order = module_load_order(DEP, &GUEST_MODULES);
        let names: Vec<String> = order.iter().map(|m| module_name(m)).collect();
        assert_eq!(
            names,
            [
                "virtio_ring",
                "virtio",
                "virtio_pci_modern_dev",
                "virtio_pci_legacy_dev",
                "virtio_pci",
                "failover",
                "net_failover",
                "virtio_net",
                "virtio_console"
            ]
        );
        for (i, m) in order.iter().enumerate() {
            let line = DEP
                .lines()
                .find(|l| l.starts_with(&format!("{m}:")))
                .unwrap();
            for d in line.split_once(':').unwrap().1.split_whitespace() {
                let at = order.iter().position(|o| o == d).unwrap();
                assert!(at < i, "{d} after {m}");
            }
        }
        // Built in (absent from modules.dep): nothing to load.
        assert!(module_load_order(DEP, &["8250"]).is_empty());
    }

    #[test]
    fn ldd_output_gives_library_paths() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        assert_eq!(
            parse_ldd(out),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn base_lists_busybox_decoy_libraries_modules_and_their_dirs() {
        let libs = [
            PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
            PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
        ];
        let modules = module_load_order(DEP, &GUEST_MODULES);
        let e = base_entries(&Base {
            busybox: Path::new("/bin/busybox"),
            decoy: Path::new("/tmp/gemelo-x/gemelo-decoy"),
            decoy_at: "gm/gemelo-decoy",
            libraries: &libs,
            modules_dir: Path::new("/lib/modules/6.1.0-56-amd64"),
            modules: &modules,
        });
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        for want in [
            "bin/busybox",
            "gm/gemelo-decoy",
            "dev/console",
            "lib/x86_64-linux-gnu/libc.so.6",
            "lib64/ld-linux-x86-64.so.2",
            "lib/modules/virtio_net.ko",
            "gm/modules.sh",
            "lib/x86_64-linux-gnu",
            "lib64",
        ] {
            assert!(paths.contains(&want), "{want} missing from {paths:?}");
        }
        // Every parent directory comes before anything inside it.
        for (i, x) in e.iter().enumerate() {
            if let Some(parent) = Path::new(&x.path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                let p = parent.display().to_string();
                let at = paths.iter().position(|q| *q == p).expect("parent listed");
                assert!(at < i, "{p} after {}", x.path);
            }
        }
        let script = e.iter().find(|x| x.path == "gm/modules.sh").unwrap();
        let Kind::Bytes(text) = &script.kind else {
            panic!("modules.sh is generated")
        };
        let text = String::from_utf8_lossy(text);
        assert!(
            text.starts_with("$bb insmod /lib/modules/virtio_ring.ko\n"),
            "{text}"
        );
        assert!(
            text.ends_with("$bb insmod /lib/modules/virtio_net.ko\n$bb insmod /lib/modules/virtio_console.ko\n"),
            "{text}"
        );
        assert!(matches!(
            e.iter().find(|x| x.path == "lib/modules/virtio.ko").unwrap().kind,
            Kind::Copy(ref p) if p == Path::new("/lib/modules/6.1.0-56-amd64/kernel/drivers/virtio/virtio.ko")
        ));
    }

    #[test]
    fn host_files_go_under_gm_unless_absolute() {
        let e = host_entries(
            "#!/bin/sh\n",
            &[
                (PathBuf::from("/gm/decoy-spec.json"), b"{}".to_vec(), 0o644),
                (PathBuf::from("www/index.html"), b"hi".to_vec(), 0o644),
            ],
        );
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "gm",
                "gm/www",
                "init",
                "gm/decoy-spec.json",
                "gm/www/index.html"
            ]
        );
        assert_eq!(e[2].mode, 0o755);
    }

    #[test]
    fn newc_members_are_aligned_and_cpio_reads_them() {
        let mut out = Vec::new();
        let mut ino = 0;
        let entries = [
            Entry::dir("gm"),
            Entry::bytes("gm/a.txt", b"hello".to_vec(), 0o644),
            Entry {
                path: "console".into(),
                mode: 0o600,
                kind: Kind::CharDevice { major: 5, minor: 1 },
            },
        ];
        write_newc(&mut out, &entries, &mut ino).unwrap();
        trailer(&mut out).unwrap();
        assert_eq!(out.len() % 4, 0);
        assert!(out.starts_with(b"070701"));
        // Header (110) + "gm\0" padded to 4 → the next member starts at 116.
        assert_eq!(&out[116..122], b"070701");
        assert_eq!(ino, 3);
        let Ok(mut child) = std::process::Command::new("cpio")
            .args(["-t", "-v", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        else {
            eprintln!("cpio is not installed: listing not checked");
            return;
        };
        child.stdin.take().unwrap().write_all(&out).unwrap();
        let listing = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 3, "{listing}");
        assert!(lines[0].starts_with("drwxr-xr-x") && lines[0].ends_with(" gm"));
        assert!(
            lines[1].starts_with("-rw-r--r--")
                && lines[1].contains(" 5 ")
                && lines[1].ends_with("gm/a.txt")
        );
        assert!(
            lines[2].starts_with("crw-------")
                && lines[2].contains("5,")
                && lines[2].ends_with("console")
        );
    }
}
