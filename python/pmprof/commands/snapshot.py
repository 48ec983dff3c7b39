"""pmprof snapshot: all stacks at one moment, as a pprof profile."""

from pmprof.commands import command, new_parser, snapshot_status

parser = new_parser(
    "snapshot",
    "Write every thread's stack at one moment as a gzipped pprof profile:\n"
    "sample type threads/count, one sample per thread, labelled with\n"
    "thread (name), tid and state.  Read it with `go tool pprof -top FILE`.",
)
parser.add_argument("-o", "--output", metavar="FILE", default="pmprof-snapshot.pb.gz",
                    help="output file (default: pmprof-snapshot.pb.gz)")


@command(parser, "write all stacks as a pprof profile")
def snapshot(ctx, args):
    session = ctx.open_session()
    snap = session.snapshot()
    snap.write_pprof(args.output, comments=["pmprof snapshot of " + ctx.target_description()])
    for w in session.warnings():
        ctx.warn(w)
    ctx.write("pmprof snapshot: wrote %d threads to %s\n" % (len(snap.threads()), args.output))
    return snapshot_status(snap)
