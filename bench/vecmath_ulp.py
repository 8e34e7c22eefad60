"""Largest error, in ulps, of the generated C's float32 exp and tanh over every float32 input.

gradgen lowers float32 exp and tanh (and sigmoid, as 1 / (1 + exp(-x))) to its own vectorizable
functions (templates/vecmath.c.jinja). This script takes them from the C source gradgen generates for
a small compiled function (the exact module text, prelude included), appends a driver, builds it
with gradgen's compiler flags and evaluates all 2**32 inputs (``--stride k``: every k-th bit
pattern) in vectorized loops, against glibc's float64 exp/tanh. Reports, per function, the
largest error in ulps of the exact value (an ulp below the smallest normal is the subnormal
spacing), where it occurs, and any input whose class (NaN, infinity, zero and its sign)
differs from the reference's. Also ``--no-fma`` (the build for CPUs without FMA).

    python bench/vecmath_ulp.py [--stride 1] [--no-fma]
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import gradgen as gg  # noqa: E402
from gradgen.runtime import compiler  # noqa: E402

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>

static double gg_ulp_error(float got, double want, long *class_errors)
{
    if (want != want || got != got) {
        *class_errors += (want != want) != (got != got);
        return 0.0;
    }
    const float wf = (float)want;
    if (isinf(wf) || isinf(got) || want == 0.0 || got == 0.0) {
        if (got != wf || signbit(got) != signbit(wf)) {
            *class_errors += 1;
        }
        if (!(isinf(wf) || isinf(got))) {
            return fabs((double)got - want) / 0x1p-149;
        }
        return 0.0;
    }
    int e;
    frexp(want, &e);
    double u = ldexp(1.0, e - 24);
    if (u < 0x1p-149) {
        u = 0x1p-149;
    }
    return fabs((double)got - want) / u;
}

#define GG_CHUNK (1 << 20)
static float gg_in[GG_CHUNK], gg_out[2][GG_CHUNK];

int main(int argc, char **argv)
{
    const uint64_t stride = argc > 1 ? strtoull(argv[1], 0, 10) : 1;
    const char *names[2] = {"exp", "tanh"};
    double worst[2] = {0, 0};
    float at[2] = {0, 0};
    long class_errors[2] = {0, 0}, over[2] = {0, 0};
    uint64_t next = 0;
    while (next < (1ull << 32)) {
        int n = 0;
        for (; n < GG_CHUNK && next < (1ull << 32); n++, next += stride) {
            const uint32_t b = (uint32_t)next;
            memcpy(&gg_in[n], &b, sizeof b);
        }
        #pragma omp simd
        for (int i = 0; i < n; i++) {
            gg_out[0][i] = gg_expf(gg_in[i]);
        }
        #pragma omp simd
        for (int i = 0; i < n; i++) {
            gg_out[1][i] = gg_tanhf(gg_in[i]);
        }
        for (int i = 0; i < n; i++) {
            const double x = gg_in[i];
            const double want[2] = {exp(x), tanh(x)};
            for (int f = 0; f < 2; f++) {
                const double err = gg_ulp_error(gg_out[f][i], want[f], &class_errors[f]);
                over[f] += err > 1.0;
                if (err > worst[f]) {
                    worst[f] = err;
                    at[f] = gg_in[i];
                }
            }
        }
    }
    for (int f = 0; f < 2; f++) {
        printf("%-8s max %.3f ulp at %a; inputs over 1 ulp: %ld; class mismatches: %ld\n",
               names[f], worst[f], at[f], over[f], class_errors[f]);
    }
    return 0;
}
"""


def module_source() -> str:
    """The C module gradgen generates for float32 exp and tanh (the vecmath prelude)."""
    f = gg.compile(lambda x: (x.exp(), x.tanh()), fullgraph=True)
    f(gg.ones(4))
    return f.inspect()[0]["c_source"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stride", type=int, default=1, help="check every k-th float32 bit pattern")
    ap.add_argument("--no-fma", action="store_true", help="build without FMA (-mno-fma)")
    args = ap.parse_args()
    source = module_source() + DRIVER
    flags = [f for f in compiler.BASE_FLAGS if f not in ("-fPIC", "-shared")]
    flags += ["-mno-fma"] if args.no_fma else []
    cc = os.environ.get("CC", "gcc")
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp, "ulp.c"), Path(tmp, "ulp")
        src.write_text(source)
        cmd = [cc, *flags, str(src), "-o", str(exe), "-lmvec", "-lm"]
        print("build:", shlex.join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        print(f"float32 inputs: every {args.stride} of 2**32 ({(2**32 + args.stride - 1) // args.stride:,}); "
              f"numpy {np.__version__}", flush=True)
        subprocess.run([str(exe), str(args.stride)], check=True)


if __name__ == "__main__":
    main()
