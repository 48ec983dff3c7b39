"""Command registry, argparse glue and the single error funnel.

Each subcommand lives in its own module with a module-level argparse
parser (its only help text) and one function decorated with @command.

The middle of python/pmprof/: commands may import pmprof, pmprof._core,
report and locks, never a debugger or pmprof.frontends; a front-end
(frontends/) hands them a Context (tools/layers.py checks it).
"""

import argparse
import importlib

from pmprof import PmprofError

# Exit statuses of the standalone CLI (documented in README.md).
EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_FAILED = 2
EXIT_USAGE = 64



def snapshot_status(snap):
    """A snapshot's exit status: partial when a thread could not be read
    or unwound, or its stack was cut short (the frame cap, Go code this
    pmprof cannot walk)."""
    return EXIT_PARTIAL if snap.nfailed or snap.ncut else EXIT_OK


COMMAND_MODULES = ("threads", "stacks", "snapshot", "record", "locks", "hang", "heap",
                   "goroutines")

REGISTRY = {}


class UsageError(PmprofError):
    def __init__(self, message):
        super().__init__(message, EXIT_USAGE)


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting (gdb must not exit)."""

    def error(self, message):
        raise UsageError(message)

    def exit(self, status=0, message=None):
        if message:
            raise UsageError(message.strip())
        raise _HelpShown()


class _HelpShown(Exception):
    pass


class Command:
    def __init__(self, name, parser, func, summary):
        self.name = name
        self.parser = parser
        self.func = func
        self.summary = summary

    def run(self, ctx, argv):
        """Parse argv and run; returns an exit status.  Raises PmprofError."""
        try:
            args = self.parser.parse_args(argv)
        except _HelpShown:
            return EXIT_OK
        return self.func(ctx, args)


def command(parser, summary):
    def deco(func):
        name = parser.prog.split()[-1]
        REGISTRY[name] = Command(name, parser, func, summary)
        return func

    return deco


# Commands defined in a module of another name.
COMMAND_HOME = {"go": "goroutines"}


def load_all():
    for m in COMMAND_MODULES:
        importlib.import_module("pmprof.commands." + m)
    return REGISTRY


def load_one(name):
    """Import the module of command `name` only (the registry then holds
    it, and whatever else that module defines)."""
    mod = COMMAND_HOME.get(name, name)
    if mod in COMMAND_MODULES:
        importlib.import_module("pmprof.commands." + mod)
    return REGISTRY


def new_parser(name, description):
    return Parser(
        prog="pmprof " + name,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def translate_core_error(e):
    """Map a pmprof._core exception to a PmprofError (one line)."""
    msg = str(e) or e.__class__.__name__
    return PmprofError(msg, EXIT_FAILED)
