#!/usr/bin/env python3
"""PTX instruction counts per kernel under NVRTC's --fmad=true and --fmad=false (kernels/NOTES.md, "FMA contraction").

Compiles each kernels/*.cu to PTX for one virtual architecture with NVRTC (no GPU needed) and counts, per entry
function, the static f32 fma, mul and add/sub instructions under both settings. Static counts, not executed ones:
a loop body counts once. Usage: tools/ptx-fma-counts.py [compute_80] [libnvrtc.so.11.2]
"""
import ctypes, glob, os, re, sys

ARCH = sys.argv[1] if len(sys.argv) > 1 else "compute_80"
LIB = ctypes.CDLL(sys.argv[2] if len(sys.argv) > 2 else "libnvrtc.so.11.2")
KERNELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernels")


def ptx_of(name, fmad):
    headers = {os.path.relpath(p, KERNELS): open(p, encoding="utf-8").read()
               for p in glob.glob(KERNELS + "/*.cuh") + glob.glob(KERNELS + "/testing/*.cuh")}
    names = list(headers)
    prog = ctypes.c_void_p()
    src = open(os.path.join(KERNELS, name), encoding="utf-8").read()
    texts = (ctypes.c_char_p * len(names))(*[headers[n].encode() for n in names])
    includes = (ctypes.c_char_p * len(names))(*[n.encode() for n in names])
    assert LIB.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), name.encode(), len(names), texts, includes) == 0
    options = [f"--gpu-architecture={ARCH}", "--std=c++17", f"--fmad={'true' if fmad else 'false'}"]
    if LIB.nvrtcCompileProgram(prog, len(options), (ctypes.c_char_p * len(options))(*[o.encode() for o in options])) != 0:
        raise SystemExit(f"{name}: NVRTC failed")
    size = ctypes.c_size_t()
    LIB.nvrtcGetPTXSize(prog, ctypes.byref(size))
    ptx = ctypes.create_string_buffer(size.value)
    LIB.nvrtcGetPTX(prog, ptx)
    LIB.nvrtcDestroyProgram(ctypes.byref(prog))
    return ptx.value.decode()


def counts(ptx):
    per_entry, current = {}, None
    for line in ptx.splitlines():
        m = re.match(r"\s*\.visible \.entry (\w+)\(", line) or re.match(r"\s*\.entry (\w+)\(", line)
        if m:
            current = per_entry.setdefault(m.group(1), [0, 0, 0])
            continue
        if current is None:
            continue
        op = line.strip().split(" ")[0].split("\t")[0]
        if re.fullmatch(r"fma\.rn(\.ftz)?\.f32", op): current[0] += 1
        elif re.fullmatch(r"mul(\.rn)?(\.ftz)?\.f32", op): current[1] += 1
        elif re.fullmatch(r"(add|sub)(\.rn)?(\.ftz)?\.f32", op): current[2] += 1
    return per_entry


print(f"| kernel ({ARCH}) | fmad=true: fma / mul / add | fmad=false: fma / mul / add |")
print("|---|---|---|")
for path in sorted(glob.glob(KERNELS + "/*.cu")):
    name = os.path.basename(path)
    on, off = counts(ptx_of(name, True)), counts(ptx_of(name, False))
    for kernel in on:
        a, b = on[kernel], off[kernel]
        if a == b and a[0] == 0:
            continue  # no float multiply-add in this kernel: contraction cannot change it
        print(f"| {kernel} | {a[0]} / {a[1]} / {a[2]} | {b[0]} / {b[1]} / {b[2]} |")
