"""Build of vaccel's extension: compiles shaders/*.comp with glslc (each declared variant too) into
build/spv, embeds the SPIR-V as C arrays, collects the op registry from VA_REGISTER_OP lines in
csrc/ops, and builds vaccel._vaccel for the stable ABI (one build serves Python 3.11 and later).

Without glslc, SPIR-V compiled earlier is taken from $VACCEL_SPIRV_DIR or build/spv.

A shader marked `//! requires: cooperative_matrix` needs a glslc that knows GL_KHR_cooperative_matrix
(glslang 13 or later; Debian 12's is older), and a variant marked `[bfloat16]` one that knows
GL_EXT_bfloat16 (glslang 16): $GLSLC_COOPMAT, else build/toolchain/glslc (fetched by
tools/fetch-glslc.sh), else glslc itself, whichever compiles the requirement's probe first. Without
one such shaders are left out and the library uses its other kernels."""

import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
SHADERS = os.path.join(ROOT, "shaders")
GEN = os.path.join(ROOT, "build", "gen")
VARIANT = re.compile(r"^//!\s*variant\s+(\w+)\s*(?:\[(\w+)\])?\s*:\s*(.*)$", re.M)
REGISTER = re.compile(r"^VA_REGISTER_OP\((\w+),\s*(\w+)\)", re.M)
REQUIRES = re.compile(r"^//!\s*requires:\s*(\w+)\s*$", re.M)
TARGET = re.compile(r"^//!\s*target:\s*(vulkan[\d.]+)\s*$", re.M)
COOPMAT_PROBE = """#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 32) in;
void main() { coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA> a; }
"""
BF16_PROBE = """#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_bfloat16 : require
layout(local_size_x = 32) in;
void main() { coopmat<bfloat16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA> a; }
"""
# What a shader (or one variant, `//! variant NAME [REQUIREMENT]: FLAGS`) needs of glslc, and the
# probe a glslc must compile to serve it.
PROBES = {"cooperative_matrix": COOPMAT_PROBE, "bfloat16": BF16_PROBE}


def shader_targets():
    """(name, source, glslc flags, requirement or None) for every shader and declared variant. A
    shader marked `//! target: vulkan1.3` is compiled for that environment (SPIR-V 1.6: the
    cooperative_matrix2 extension needs it); every other one for Vulkan 1.2."""
    out = []
    for src in sorted(glob.glob(os.path.join(SHADERS, "*.comp"))):
        base = os.path.splitext(os.path.basename(src))[0]
        with open(src) as f:
            text = f.read()
        req = REQUIRES.findall(text)
        req = req[0] if req else None
        env = TARGET.findall(text)
        env = [f"--target-env={env[0] if env else 'vulkan1.2'}"]
        out.append((base, src, env, req))
        for var, vreq, flags in VARIANT.findall(text):
            out.append((f"{base}_{var}", src, env + flags.split(), vreq or req))
    return out


def special_glslc(default, req):
    """A glslc that compiles PROBES[req] (GL_KHR_cooperative_matrix, GL_EXT_bfloat16), or None."""
    import tempfile
    cands = [os.environ.get("GLSLC_COOPMAT"), os.path.join(ROOT, "build", "toolchain", "glslc"), default]
    for c in cands:
        if not c or not (shutil.which(c) or os.path.exists(c)):
            continue
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "probe.comp")
            with open(src, "w") as f:
                f.write(PROBES[req])
            r = subprocess.run([c, "--target-env=vulkan1.2", "-fshader-stage=compute", src, "-o",
                                os.path.join(d, "probe.spv")], capture_output=True)
            if r.returncode == 0:
                return c
    return None


def compile_shaders(spv_dir):
    glslc = shutil.which(os.environ.get("GLSLC", "glslc"))
    prebuilt = os.environ.get("VACCEL_SPIRV_DIR")
    targets = shader_targets()
    if glslc is None:
        src_dir = prebuilt or spv_dir
        missing = [n for n, _, _, req in targets
                   if not req and not os.path.exists(os.path.join(src_dir, n + ".spv"))]
        if missing:
            sys.exit(f"glslc not found and no precompiled SPIR-V for {missing} in {src_dir}; "
                     "install glslc (Debian: apt-get install glslc) or set VACCEL_SPIRV_DIR")
        return src_dir
    os.makedirs(spv_dir, exist_ok=True)
    special = {}
    # shaders/*.glsl are included by .comp files: a change to one rebuilds every shader.
    included = max((os.path.getmtime(p) for p in glob.glob(os.path.join(SHADERS, "*.glsl"))), default=0)
    for name, src, flags, req in targets:
        out = os.path.join(spv_dir, name + ".spv")
        if os.path.exists(out) and os.path.getmtime(out) >= max(os.path.getmtime(src), included):
            continue
        compiler = glslc
        if req:
            if req not in special:
                special[req] = special_glslc(glslc, req)
                if special[req] is None:
                    print(f"warning: no glslc for '{req}' kernels (run tools/fetch-glslc.sh); "
                          f"{name} and the other '{req}' kernels are left out of this build")
            compiler = special[req]
            if compiler is None:
                if os.path.exists(out):
                    os.remove(out)
                continue
        cmd = [compiler, "-O", "-fshader-stage=compute", "-I", SHADERS, *flags, src,
               "-o", out]
        print(" ".join(cmd))
        subprocess.check_call(cmd)
    return spv_dir


def write_if_changed(path, text):
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
    with open(path, "w") as f:
        f.write(text)


def generate_sources(spv_dir):
    """build/gen/spirv_table.c and build/gen/op_table.c."""
    os.makedirs(GEN, exist_ok=True)
    lines = ["/* Generated by setup.py from shaders/: embedded SPIR-V. */", '#include "internal.h"', ""]
    entries = []
    for name, _, _, req in shader_targets():
        path = os.path.join(spv_dir, name + ".spv")
        if req and not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        words = [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]
        body = ",".join(f"0x{w:08x}u" for w in words)
        lines.append(f"static const uint32_t spv_{name}[{len(words)}] = {{{body}}};")
        entries.append(f'    {{"{name}", spv_{name}, {len(words)}}},')
    lines += ["const va_spirv va_spirv_table[] = {", *entries, "};",
              f"const size_t va_spirv_count = {len(entries)};", ""]
    write_if_changed(os.path.join(GEN, "spirv_table.c"), "\n".join(lines))

    ops = []
    for src in sorted(glob.glob(os.path.join(ROOT, "csrc", "ops", "*.c"))):
        with open(src) as f:
            ops += REGISTER.findall(f.read())
    lines = ["/* Generated by setup.py from VA_REGISTER_OP lines in csrc/ops/. */", '#include "internal.h"', ""]
    lines += [f"va_status va_op_{name}(va_stream *, const va_tensor *, int, const va_tensor *, int, "
              f"const int64_t *, int, const double *, int);" for name, _ in ops]
    lines += ["const va_op_entry va_op_table[] = {"]
    lines += [f'    {{"{name}", va_op_{name}}},' for name, _ in ops]
    lines += ["    {NULL, NULL}", "};", f"const size_t va_op_count = {len(ops)};",
              "const char *const va_op_name_list[] = {", *[f'    "{n}",' for n, _ in ops], "    NULL", "};", ""]
    write_if_changed(os.path.join(GEN, "op_table.c"), "\n".join(lines))


class BuildExt(build_ext):
    def run(self):
        spv = compile_shaders(os.path.join(ROOT, "build", "spv"))
        generate_sources(spv)
        super().run()


sources = sorted(glob.glob("csrc/core/*.c")) + sorted(glob.glob("csrc/ops/*.c")) + [
    "csrc/python/module.c", "build/gen/spirv_table.c", "build/gen/op_table.c"]

ext = Extension(
    "vaccel._vaccel",
    sources=sources,
    include_dirs=["csrc", "csrc/core"],
    libraries=["vulkan"],
    define_macros=[("Py_LIMITED_API", "0x030B0000")],
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                        "-Wno-missing-field-initializers", "-D_GNU_SOURCE", "-fvisibility=hidden"],
    extra_link_args=["-lpthread"],
    py_limited_api=True,
)

setup(
    packages=["vaccel"],
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExt},
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
