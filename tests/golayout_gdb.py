# Sourced by gdb (tests/golayout.py dwarf_row): the offsets named in
# $PMPROF_GOLAYOUT ({field: [type, [paths]]}) from the loaded Go binary's
# DWARF, printed as one line "GOLAYOUT {json}".
import json
import os

import gdb


def member(t, path):
    """Offset of the member at dotted path in type t; None if absent."""
    off = 0
    for comp in path.split("."):
        t = t.strip_typedefs()
        if t.code != gdb.TYPE_CODE_STRUCT:
            return None
        for f in t.fields():
            if f.name == comp:
                off += f.bitpos // 8
                t = f.type
                break
        else:
            return None
    return off


def main():
    want = json.loads(os.environ["PMPROF_GOLAYOUT"])
    out = {}
    for field, (tname, paths) in want.items():
        t = gdb.lookup_type(tname)
        val = 0
        for p in paths:
            v = t.sizeof if p == "" else member(t, p)
            if v is not None:
                val = v
                break
        out[field] = val
    if not os.environ.get("PMPROF_GOLAYOUT_EXTRA"):
        print("GOLAYOUT " + json.dumps(out))
        return
    st = gdb.lookup_global_symbol("runtime.semtable") or gdb.lookup_symbol("runtime.semtable")[0]
    arr = st.type.strip_typedefs()
    out["semtab_entry"] = arr.target().sizeof
    out["semtab_n"] = arr.sizeof // arr.target().sizeof
    lm = gdb.lookup_type("runtime/pprof.labelMap").strip_typedefs()
    out["labels_slice"] = 1 if lm.code == gdb.TYPE_CODE_STRUCT else 0
    print("GOLAYOUT " + json.dumps(out))


main()
