"""How the tests compile: with XLA's cheap passes, except the numbers compared with the reference code's.

Why: compiling is most of what a test costs on a CPU (tiny networks, a few updates), and LLVM's cheap passes take
about a third off it (the golden tests' programs: 180 -> 103 CPU-s). XLA's older elemental emitters in place of its
fusion emitters take about 40% more off (a tiny DROL, FQL and IQL update: 4.4 -> 2.0 s; a 40-step main.py run with
an empty compilation cache: 12.4 -> 8.2 CPU-s) and run those programs as fast. Generating a program's machine code
in one piece, instead of in up to 32 parts for a pool of threads, takes a fifth more off (every agent's tiny update
and sample_actions: 5.3-5.5 -> 4.0-4.3 CPU-s): the suite's two workers already keep both cores busy. These move the
last bits of some numbers (the golden cases' parameters by up to 1.0e-3 of their scale, against 6.3e-4 between
processors; one piece instead of 32 moves DROL's, FQL's and IFQL's tiny updates, not the others'), which matters
only where numbers are compared with stored ones: the golden tests compile their programs with XLA's defaults
(`RUNS_COMPILE`, through jax.jit's compiler_options), bit for bit as a run compiles them. Every other test compares
two computations, or two runs, compiled alike. tests/conftest.py puts FAST_COMPILE in XLA_FLAGS for the whole
session, the programs the tests start included. Imported before jax: no jax here.
"""

FAST_COMPILE = (
    '--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true --xla_cpu_use_fusion_emitters=false '
    '--xla_cpu_parallel_codegen_split_count=1'
)
# XLA's own defaults for the options FAST_COMPILE sets: what a run compiles with when XLA_FLAGS sets none of them.
RUNS_COMPILE = {
    'xla_backend_optimization_level': 3,
    'xla_llvm_disable_expensive_passes': False,
    'xla_cpu_use_fusion_emitters': True,
    'xla_cpu_parallel_codegen_split_count': 32,
}


def with_fast_compile(xla_flags):
    """`xla_flags` (an XLA_FLAGS value or None) with FAST_COMPILE first, once."""
    xla_flags = xla_flags or ''
    return xla_flags if FAST_COMPILE in xla_flags else f'{FAST_COMPILE} {xla_flags}'.strip()
