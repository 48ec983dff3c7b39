"""compact_core: a small core file with the same memory as a big one.

    python3 compact_core.py IN OUT [--max-bytes N]

A core of a Go program is ~700 MB and one of a C program with 8 MiB thread
stacks ~20 MB, nearly all zero pages: too big for a fuzzer's input or for
hundreds of damaged variants.  This rewrites the core keeping its ELF
header, its notes (threads, registers, NT_FILE) and every byte of memory
that reads the same: a PT_LOAD that no NT_FILE entry covers (anonymous
memory) is split into runs of non-zero pages, each run its own PT_LOAD
whose p_memsz reaches to the next run, so the zero pages in between read
as zeros again (bytes past p_filesz that no file covers are zeros:
ext/target/target-core.c's memory model).  File-backed segments are copied whole.
--max-bytes caps the memory kept (the largest anonymous runs are dropped
first: a seed, not an exact copy; 0: no cap).

Owns: this rewrite only.  Must not: change the notes or the header beyond
e_phoff/e_phnum/e_shoff (section headers are dropped).
"""

import struct
import sys

PAGE = 4096
PT_LOAD, PT_NOTE = 1, 4
NT_FILE = 0x46494C45


def _phdrs(b):
    if b[:4] != b"\x7fELF" or b[4] != 2:
        raise ValueError("not an ELF64 file")
    phoff, = struct.unpack_from("<Q", b, 32)
    phentsize, phnum = struct.unpack_from("<HH", b, 54)
    out = []
    for i in range(phnum):
        out.append(list(struct.unpack_from("<IIQQQQQQ", b, phoff + i * phentsize)))
    return out


def _notes(data):
    off = 0
    while off + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from("<III", data, off)
        off += 12
        name = data[off:off + namesz]
        off += (namesz + 3) & ~3
        desc = data[off:off + descsz]
        off += (descsz + 3) & ~3
        yield name, ntype, desc


def _file_ranges(b, phs):
    ranges = []
    for ph in phs:
        if ph[0] != PT_NOTE:
            continue
        for _name, ntype, desc in _notes(b[ph[2]:ph[2] + ph[5]]):
            if ntype != NT_FILE or len(desc) < 16:
                continue
            count, _pagesz = struct.unpack_from("<QQ", desc, 0)
            for i in range(min(count, (len(desc) - 16) // 24)):
                s, e, _o = struct.unpack_from("<QQQ", desc, 16 + 24 * i)
                ranges.append((s, e))
    return ranges


def _runs(data):
    """(start, end) byte offsets of maximal runs of non-zero pages."""
    runs, cur = [], None
    zero = bytes(PAGE)
    for off in range(0, len(data), PAGE):
        nz = data[off:off + PAGE] != zero[:len(data) - off if off + PAGE > len(data) else PAGE]
        if nz and cur is None:
            cur = off
        elif not nz and cur is not None:
            runs.append((cur, off))
            cur = None
    if cur is not None:
        runs.append((cur, len(data)))
    return runs


def compact(b: bytes, max_bytes: int = 0) -> bytes:
    phs = _phdrs(b)
    files = _file_ranges(b, phs)
    notes, loads = [], []       # loads: [vaddr, memsz, flags, align, bytes]
    for ph in phs:
        ptype, flags, off, vaddr, _pa, filesz, memsz, align = ph
        data = b[off:off + min(filesz, memsz)]
        if ptype == PT_NOTE:
            notes.append((ph, b[off:off + filesz]))
        elif ptype != PT_LOAD:
            continue
        elif not data or any(s < vaddr + memsz and vaddr < e for s, e in files):
            loads.append([vaddr, memsz, flags, align, data])
        else:
            runs = _runs(data)
            if not runs:
                loads.append([vaddr, memsz, flags, align, b""])
            elif runs[0][0] > 0:     # leading zero pages: a segment of zeros
                loads.append([vaddr, runs[0][0], flags, align, b""])
            for i, (s, e) in enumerate(runs):
                end = runs[i + 1][0] if i + 1 < len(runs) else memsz
                loads.append([vaddr + s, end - s, flags, align, data[s:e]])
    if max_bytes:
        total = sum(len(l[4]) for l in loads)
        for l in sorted(loads, key=lambda l: -len(l[4])):
            if total <= max_bytes:
                break
            total -= len(l[4])
            l[4] = b""
    phnum = len(notes) + len(loads)
    ehdr = bytearray(b[:64])
    struct.pack_into("<Q", ehdr, 32, 64)            # e_phoff
    struct.pack_into("<Q", ehdr, 40, 0)             # e_shoff
    struct.pack_into("<HHHH", ehdr, 54, 56, phnum, 0, 0)
    off = 64 + 56 * phnum
    ph_out, body = [], []
    for ph, data in notes:
        ph_out.append(struct.pack("<IIQQQQQQ", PT_NOTE, ph[1], off, 0, 0, len(data), 0, ph[7]))
        body.append(data)
        off += len(data)
    for vaddr, memsz, flags, align, data in loads:
        pad = (-off) % 8
        body.append(bytes(pad))
        off += pad
        ph_out.append(struct.pack("<IIQQQQQQ", PT_LOAD, flags, off, vaddr, 0, len(data),
                                  memsz, align))
        body.append(data)
        off += len(data)
    return bytes(ehdr) + b"".join(ph_out) + b"".join(body)


def main(argv):
    max_bytes = 0
    if "--max-bytes" in argv:
        i = argv.index("--max-bytes")
        max_bytes = int(argv[i + 1])
        del argv[i:i + 2]
    src, dst = argv[1], argv[2]
    with open(src, "rb") as f:
        b = f.read()
    out = compact(b, max_bytes)
    with open(dst, "wb") as f:
        f.write(out)
    print("%s: %d -> %d bytes" % (dst, len(b), len(out)))


if __name__ == "__main__":
    main(sys.argv)
