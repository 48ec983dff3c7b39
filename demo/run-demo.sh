#!/bin/sh
# run-demo.sh: start demo/bin/demo, look at it with pmprof, stop it.
#
#   bin/pmprof stacks -p PID              merged stacks of every thread
#   bin/pmprof snapshot -p PID -o FILE    the same as a pprof profile
#   go tool pprof -top FILE               read back by pprof (if go exists)
#   bin/pmprof locks -p PID               who waits for which lock, held by whom
#   bin/pmprof record -p PID -d 2 ...     2 s of sampling: CPU/wall profile,
#                                         flame-graph and Perfetto files
#   bin/pmprof goroutines --group -p GPID demo/bin/godemo (when go exists, a
#   bin/pmprof go sched -p GPID           stripped Go binary): its goroutines
#                                         as Go prints them, its scheduler
#
# The profile is kept in $PMPROF_DEMO_OUT (default build/demo/demo.pb.gz).
# The demo process is killed on every exit path (trap).  Exit status: 0,
# or pmprof's when it failed (2), 1 when a snapshot was only partial.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
pmprof=${PMPROF:-$root/bin/pmprof}
out_dir=${PMPROF_DEMO_OUT:-$root/build/demo}
demo=$here/bin/demo

if [ ! -x "$pmprof" ]; then
    echo "run-demo: $pmprof not found: run 'make build' first" >&2
    exit 2
fi
make -s -C "$here"
mkdir -p "$out_dir"
profile=$out_dir/demo.pb.gz

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pmprof-demo.XXXXXX")
pid=
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
    if [ -n "$pid" ]; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$demo" >"$tmp/stdout" 2>"$tmp/stderr" &
pid=$!
tries=0
until grep -qx READY "$tmp/stdout"; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "run-demo: the demo exited early: $(cat "$tmp/stderr")" >&2
        exit 2
    fi
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ]; then
        echo "run-demo: the demo did not print READY within 10 s" >&2
        exit 2
    fi
    sleep 0.1
done

status=0
# run CMD...: echo the command, run it, keep the worst status; a partial
# result (1) goes on, a failure (2+) stops the demo.
run() {
    echo
    echo "\$ $*"
    rc=0
    "$@" || rc=$?
    if [ "$rc" -gt 1 ]; then
        echo "run-demo: '$*' failed (exit $rc)" >&2
        exit "$rc"
    fi
    if [ "$rc" -gt "$status" ]; then
        status=$rc
    fi
}

echo "demo running as pid $pid (threads: worker-0/1 busy, flusher holding the"
echo "journal lock in flush_to_disk, client-0..2 waiting for it, pool-0..3 idle)"
run "$pmprof" stacks -p "$pid"
run "$pmprof" snapshot -p "$pid" -o "$profile"
if command -v go >/dev/null 2>&1; then
    run env HOME="${HOME:-$tmp}" GOCACHE="$tmp/gocache" GOTOOLCHAIN=local \
        go tool pprof -top "$profile"
else
    echo
    echo "(go is not installed: skipping 'go tool pprof -top $profile')"
fi
# locks exits 3 for a hang (the flusher holds the journal lock while the
# clients wait): that is the finding, not a failure.
echo
echo "\$ $pmprof locks -p $pid"
rc=0
"$pmprof" locks -p "$pid" || rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 3 ] && [ "$rc" != 4 ]; then
    echo "run-demo: 'pmprof locks' failed (exit $rc)" >&2
    exit "$rc"
fi
run "$pmprof" record -p "$pid" -d 2 --top 5 -o "$out_dir/record.pb.gz" \
    -o "$out_dir/record.folded" -o "$out_dir/record.trace.json"
kill -KILL "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=
if [ -x "$here/bin/godemo" ]; then
    "$here/bin/godemo" >"$tmp/godemo.out" &
    pid=$!
    for _ in $(seq 100); do
        grep -q READY "$tmp/godemo.out" 2>/dev/null && break
        sleep 0.05
    done
    echo
    echo "godemo running as pid $pid (a stripped Go binary: 4 workers waiting for"
    echo "jobs, 3 handlers waiting for a mutex the cache refresher holds, 2 encoders)"
    run "$pmprof" goroutines --group -p "$pid"
    run "$pmprof" go sched -p "$pid"
fi
echo
echo "profiles kept: $profile (snapshot), $out_dir/record.pb.gz (go tool pprof),"
echo "  $out_dir/record.folded (flame graph), $out_dir/record.trace.json (ui.perfetto.dev)"
exit "$status"
