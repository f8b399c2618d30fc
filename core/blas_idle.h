// OpenBLAS's worker threads busy-wait (a sched_yield loop) for about 2^28
// cycles after every GEMM before they sleep. deja runs its own thread pool
// between GEMMs (im2col, col2im, LRN, pooling ...), so on a 2-core machine
// the spinning BLAS worker takes a core from our pool's worker: measured here
// a 20-25% slower CifarNet step and a quarter of the CPU time in the kernel.
// OpenBLAS reads OPENBLAS_THREAD_TIMEOUT (log2 of the spin cycles, 4..30)
// only when the library loads, so the programs set it and re-execute
// themselves once, first thing in main. A value the user set is kept.
#pragma once

namespace deja::core {

// log2 cycles OpenBLAS workers spin before sleeping (its minimum).
inline constexpr int kBlasThreadTimeout = 4;

// If OPENBLAS_THREAD_TIMEOUT is unset: sets it and re-executes the running
// program (/proc/self/exe) with the same arguments; returns only when the
// variable was already set or the re-execution failed (then the run goes on
// with OpenBLAS's default, just slower).
void reexec_with_short_blas_spin(char** argv);

}  // namespace deja::core
