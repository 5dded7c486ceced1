// Thin wrapper over the BLAS routines the core uses (OpenBLAS from scipy-openblas32).
#pragma once

#include <cstdint>

namespace lrcore {

using Index = std::int64_t;

// C = A · Bᵀ + beta · C for row-major A (m×k, leading dim lda), B (n×k, ldb), C (m×n, ldc).
// This is the layout of a batch of points (rows) times an nn.Linear weight (out×in).
void gemm_nt(Index m, Index n, Index k, const double* a, Index lda, const double* b, Index ldb,
             double beta, double* c, Index ldc);

// C = A · B + beta · C for row-major A (m×k, lda), B (k×n, ldb), C (m×n, ldc): a
// convolution's kernel rows times its im2col columns.
void gemm_nn(Index m, Index n, Index k, const double* a, Index lda, const double* b, Index ldb,
             double beta, double* c, Index ldc);

// The lower triangle of C = A · Aᴴ (A: n×k) or, conj_trans, C = Aᴴ · A (A: k×n) for
// row-major complex A (lda complex entries; real and imaginary parts interleaved), C (n×n,
// ldc): a Gram matrix. Each entry's real and imaginary parts are sums of 2k real products
// (no 3-multiplication complex product).
void herk_lower(bool conj_trans, Index n, Index k, const double* a, Index lda, double* c,
                Index ldc);

// The same in single precision (cherk): about twice the rate of zherk.
void herk_lower(bool conj_trans, Index n, Index k, const float* a, Index lda, float* c, Index ldc);

// The core parallelises over work items itself, so BLAS runs single-threaded inside it.
void set_blas_threads(int num_threads);

// Name of the kernel OpenBLAS picked for this CPU (e.g. "Haswell", "SkylakeX").
const char* blas_corename();

}  // namespace lrcore
