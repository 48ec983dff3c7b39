#!/usr/bin/env python3
"""Fetch the glibc and Go versions pmprof is tested against, into a cache.

Owns: the version manifest (which Debian suite serves which glibc and Go
release), a private apt configuration (its own sources.list and package
lists under the cache, never the system's), `apt-get download` of each
version's packages and `dpkg -x` of them into one directory per version.
Nothing is installed over the system.

Idempotent: a version whose directory holds a stamp is not fetched again;
the package lists are refreshed when older than a day.

    tools/versions.py fetch [glibc|go|all|NAME...]   fetch (network), print JSON
    tools/versions.py list                           what the cache holds (no network)
    tools/versions.py path NAME                      the root of one entry

The cache: $PMPROF_VERSIONS_DIR, else $XDG_CACHE_HOME/pmprof/versions
(~/.cache/pmprof/versions).  Exit status: 0 fetched, 3 the archive could
not be reached (the message says why), 2 usage.

An entry's name is the upstream version the suite served when fetched
("glibc-2.43", "go-1.26"): the tests key every expectation on the version
read from the target, not on this name.
"""

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time

ARCHIVE = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
SUITES = ["bullseye", "bookworm", "bookworm-backports", "trixie", "sid"]

# name -> (suite, packages).  glibc: the runtime, its debug info, and the
# headers and link files the test programs are built against (a program
# built on 2.36 asks for GLIBC_2.34 symbols that 2.31 lacks).  Go: the
# toolchain and its standard library sources.  go-1.27 is newer than
# every table: the tests use it for the "unknown version" path.
GLIBC = {
    "2.31": "bullseye",
    "2.36": "bookworm",
    "2.41": "trixie",
    "2.43": "sid",
}
GO = {
    "1.19": "bookworm",
    "1.21": "bookworm-backports",
    "1.22": "bookworm-backports",
    "1.23": "bookworm-backports",
    "1.24": "trixie",
    "1.26": "sid",
    "1.27": "sid",
}


def manifest():
    out = {}
    for v, suite in GLIBC.items():
        out["glibc-" + v] = (suite, ["libc6", "libc6-dbg", "libc6-dev",
                                     "linux-libc-dev", "libgcc-s1"])
    for v, suite in GO.items():
        out["go-" + v] = (suite, ["golang-%s-go" % v, "golang-%s-src" % v])
    return out


def cache_dir():
    d = os.environ.get("PMPROF_VERSIONS_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
            os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "pmprof", "versions")
    return d


class Unreachable(Exception):
    pass


class Apt:
    """apt-get with a private sources.list and list directory."""

    def __init__(self, root):
        self.root = os.path.join(root, "apt")
        self.lists = os.path.join(self.root, "lists")
        self.cache = os.path.join(self.root, "cache")
        self.sources = os.path.join(self.root, "sources.list")
        for d in (os.path.join(self.lists, "partial"),
                  os.path.join(self.cache, "archives", "partial")):
            os.makedirs(d, exist_ok=True)
        text = "".join("deb [signed-by=%s] %s %s main\n" % (KEYRING, ARCHIVE, s)
                       for s in SUITES)
        if not os.path.exists(self.sources) or open(self.sources).read() != text:
            with open(self.sources, "w") as f:
                f.write(text)

    def opts(self):
        return ["-o", "Dir::Etc::sourcelist=" + self.sources,
                "-o", "Dir::Etc::sourceparts=-",
                "-o", "Dir::State::Lists=" + self.lists,
                "-o", "Dir::Cache=" + self.cache,
                "-o", "APT::Get::List-Cleanup=0",
                "-o", "Debug::NoLocking=1",
                "-o", "APT::Sandbox::User=root"]

    def _locked(self):
        """An exclusive lock on this apt state: apt runs here without its
        own locking (Debug::NoLocking), and two updates into one list
        directory (two test processes, say) spoil each other's lists."""
        f = open(os.path.join(self.root, ".lock"), "w")
        fcntl.flock(f, fcntl.LOCK_EX)
        return f

    def update(self, force=False):
        stamp = os.path.join(self.root, "updated")
        with self._locked():
            if not force and os.path.exists(stamp) and \
                    time.time() - os.path.getmtime(stamp) < 86400:
                return
            r = subprocess.run(["apt-get", "-q"] + self.opts() + ["update"],
                               capture_output=True, text=True, timeout=600)
            lists = os.listdir(self.lists)
            missing = [su for su in SUITES
                       if not any("_dists_%s_main_" % su in f and "_Packages" in f
                                  for f in lists)]
            if missing:
                raise Unreachable("apt-get update did not get the package list of "
                                  "%s: %s" % (", ".join(missing),
                                              (r.stderr.strip().splitlines() or
                                               ["(no message)"])[-1]))
            open(stamp, "w").close()

    def candidates(self, pkgs, suite):
        """{package: the version suite serves} for those it serves."""
        with self._locked():
            r = subprocess.run(["apt-cache"] + self.opts() + ["madison"] + pkgs,
                               capture_output=True, text=True, timeout=300)
        out = {}
        for line in r.stdout.splitlines():
            cols = [c.strip() for c in line.split("|")]
            if len(cols) == 3 and cols[0] in pkgs and cols[0] not in out and \
                    (" %s/main amd64 Packages" % suite) in cols[2]:
                out[cols[0]] = cols[1]
        return out

    def download(self, specs, dest):
        with self._locked():
            r = subprocess.run(["apt-get", "-q"] + self.opts() + ["download"] + specs,
                               cwd=dest, capture_output=True, text=True, timeout=1200)
        if r.returncode != 0:
            raise Unreachable("apt-get download %s: %s" % (
                " ".join(specs), (r.stderr.strip().splitlines() or ["failed"])[-1]))


def upstream(debver):
    """2.31-13+deb11u11 -> 2.31; 1.21.13-1~bpo12+1 -> 1.21.13."""
    v = debver.split(":")[-1].split("-")[0]
    return v.split("+")[0].split("~")[0]


def fetch_one(apt, root, name, suite, pkgs):
    kind, want = name.split("-", 1)
    got = apt.candidates(pkgs, suite)
    if any(p not in got for p in pkgs):
        # Lists older than the suite's current packages, or spoiled: once
        # more with fresh ones before saying the suite lacks them.
        apt.update(force=True)
        got = apt.candidates(pkgs, suite)
    for p in pkgs:
        if p not in got:
            raise Unreachable("%s: suite %s serves no %s" % (name, suite, p))
    vers = {p: got[p] for p in pkgs}
    main = vers[pkgs[0]]
    up = upstream(main)
    series = ".".join(up.split(".")[:2])
    entry = "%s-%s" % (kind, series)
    if series != want:
        print("pmprof: %s now serves %s %s for %s" % (suite, kind, up, name),
              file=sys.stderr)
    d = os.path.join(root, entry)
    stamp = os.path.join(d, "stamp.json")
    if os.path.exists(stamp):
        with open(stamp) as f:
            info = json.load(f)
        if info.get("packages") == vers:
            return info
    tmp = d + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "debs"))
    apt.download(["%s=%s" % (p, v) for p, v in vers.items()],
                 os.path.join(tmp, "debs"))
    for deb in sorted(os.listdir(os.path.join(tmp, "debs"))):
        subprocess.run(["dpkg", "-x", os.path.join(tmp, "debs", deb),
                        os.path.join(tmp, "root")], check=True, timeout=600)
    shutil.rmtree(os.path.join(tmp, "debs"))
    if kind == "glibc":
        fix_root(os.path.join(tmp, "root"))
    info = {"name": entry, "kind": kind, "series": series, "version": up,
            "suite": suite, "packages": vers, "root": os.path.join(d, "root")}
    info.update(layout(kind, series, os.path.join(tmp, "root"), d))
    with open(os.path.join(tmp, "stamp.json"), "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)
    shutil.rmtree(d, ignore_errors=True)
    os.rename(tmp, d)
    return info


def fix_root(root):
    """Make an unpacked root self-contained: absolute symlinks (libc6
    ships /lib64/ld-linux-x86-64.so.2 -> /lib/...) point inside it, and a
    merged-/usr root gets its /lib and /lib64 links, which libc.so's
    linker script names."""
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            if os.path.islink(p):
                t = os.readlink(p)
                if t.startswith("/"):
                    os.unlink(p)
                    os.symlink(os.path.relpath(root + t, dirpath), p)
    for d in ("lib", "lib64"):
        if not os.path.lexists(os.path.join(root, d)) and \
                os.path.isdir(os.path.join(root, "usr", d)):
            os.symlink(os.path.join("usr", d), os.path.join(root, d))


def layout(kind, series, root, final):
    """Where the pieces are inside an unpacked root (found in root, named
    as they will be under final/root)."""
    here = lambda p: os.path.join(final, "root", os.path.relpath(p, root))
    if kind == "glibc":
        libdir = None
        for cand in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"):
            if os.path.exists(os.path.join(root, cand, "libc.so.6")):
                libdir = os.path.join(root, cand)
                break
        loader = os.path.join(libdir, "ld-linux-x86-64.so.2")
        froot = os.path.join(final, "root")
        m = "x86_64-linux-gnu"
        # A program built with these runs on this glibc by itself: its
        # headers and link files, its loader as PT_INTERP, its libdir as
        # RUNPATH (gcc's own relative search paths would find the
        # system's crt files and libc.so first, hence -B and -L).
        cflags = ["--sysroot=" + froot, "-B" + os.path.join(froot, "usr/lib", m),
                  "-L" + os.path.join(froot, "usr/lib", m),
                  "-L" + os.path.join(froot, "lib", m),
                  "-Wl,--dynamic-linker=" + here(loader),
                  "-Wl,-rpath=" + here(libdir)]
        return {"libdir": here(libdir), "loader": here(loader),
                "debug_dir": here(os.path.join(root, "usr/lib/debug")),
                "cflags": cflags}
    goroot = here(os.path.join(root, "usr/lib/go-" + series))
    return {"goroot": goroot, "go": os.path.join(goroot, "bin", "go")}


def cached():
    root = cache_dir()
    out = []
    if os.path.isdir(root):
        for e in sorted(os.listdir(root)):
            s = os.path.join(root, e, "stamp.json")
            if os.path.exists(s):
                with open(s) as f:
                    out.append(json.load(f))
    return out


def fetch(names):
    root = cache_dir()
    os.makedirs(root, exist_ok=True)
    man = manifest()
    with open(os.path.join(root, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Entries already stamped need no network at all.
        have = {(i["kind"], i["series"]): i for i in cached()}
        out, todo = [], []
        for n in names:
            kind, series = n.split("-", 1)
            if (kind, series) in have and not os.environ.get("PMPROF_VERSIONS_REFRESH"):
                out.append(have[(kind, series)])
            else:
                todo.append(n)
        if todo:
            apt = Apt(root)
            apt.update(force=bool(os.environ.get("PMPROF_VERSIONS_REFRESH")))
            for n in todo:
                suite, pkgs = man[n]
                out.append(fetch_one(apt, root, n, suite, pkgs))
    return out


def main(argv):
    man = manifest()
    if not argv or argv[0] not in ("fetch", "list", "path"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if argv[0] == "list":
        print(json.dumps(cached(), indent=1))
        return 0
    if argv[0] == "path":
        for i in cached():
            if i["name"] == (argv[1] if len(argv) > 1 else ""):
                print(i["root"])
                return 0
        return 1
    sel = argv[1:] or ["all"]
    names = []
    for s in sel:
        if s == "all":
            names += list(man)
        elif s in ("glibc", "go"):
            names += [n for n in man if n.startswith(s + "-")]
        elif s in man:
            names.append(s)
        else:
            print("pmprof: unknown version %r (known: %s)" % (s, ", ".join(man)),
                  file=sys.stderr)
            return 2
    try:
        got = fetch(list(dict.fromkeys(names)))
    except (Unreachable, subprocess.TimeoutExpired, OSError) as e:
        print("pmprof: cannot fetch versions: %s" % e, file=sys.stderr)
        return 3
    print(json.dumps(got, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
