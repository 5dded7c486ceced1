#include "lrcore/blas.hpp"

#include <cblas.h>

#include <limits>
#include <stdexcept>
#include <string>

namespace lrcore {

namespace {
// Products of at most this many rows of A run as matrix-vector products.
constexpr Index kGemvRows = 3;

// scipy-openblas32 takes 32-bit sizes; larger ones would wrap silently.
blasint checked_size(Index value, const char* what) {
    if (value < 0 || value > std::numeric_limits<blasint>::max()) {
        throw std::length_error(std::string("lrcore: matrix dimension '") + what +
                                "' = " + std::to_string(value) +
                                " is out of range for the BLAS (32-bit sizes)");
    }
    return static_cast<blasint>(value);
}
}  // namespace

namespace {
void gemm(CBLAS_TRANSPOSE trans_b, Index m, Index n, Index k, const double* a, Index lda,
          const double* b, Index ldb, double beta, double* c, Index ldc) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
        for (Index i = 0; i < m; ++i)
            for (Index j = 0; j < n; ++j) c[i * ldc + j] *= beta;
        return;
    }
    if (m <= kGemvRows) {
        // A few rows: one matrix-vector product each. dgemm packs all of B into its own
        // layout first, which for a 784-wide first layer and 2 points costs more than the
        // products (one segment through 784->[128]x3: 132 us of CPU, 105 us with dgemv).
        for (Index i = 0; i < m; ++i) {
            if (trans_b == CblasTrans)  // B is (n x k): c_i = B a_i
                scipy_cblas_dgemv(CblasRowMajor, CblasNoTrans, checked_size(n, "n"),
                                  checked_size(k, "k"), 1.0, b, checked_size(ldb, "ldb"),
                                  a + i * lda, 1, beta, c + i * ldc, 1);
            else  // B is (k x n): c_i = B^T a_i
                scipy_cblas_dgemv(CblasRowMajor, CblasTrans, checked_size(k, "k"),
                                  checked_size(n, "n"), 1.0, b, checked_size(ldb, "ldb"),
                                  a + i * lda, 1, beta, c + i * ldc, 1);
        }
        return;
    }
    scipy_cblas_dgemm(CblasRowMajor, CblasNoTrans, trans_b, checked_size(m, "m"),
                      checked_size(n, "n"), checked_size(k, "k"), 1.0, a, checked_size(lda, "lda"),
                      b, checked_size(ldb, "ldb"), beta, c, checked_size(ldc, "ldc"));
}
}  // namespace

void gemm_nt(Index m, Index n, Index k, const double* a, Index lda, const double* b, Index ldb,
             double beta, double* c, Index ldc) {
    gemm(CblasTrans, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

void gemm_nn(Index m, Index n, Index k, const double* a, Index lda, const double* b, Index ldb,
             double beta, double* c, Index ldc) {
    gemm(CblasNoTrans, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

void herk_lower(bool conj_trans, Index n, Index k, const double* a, Index lda, double* c,
                Index ldc) {
    if (n == 0) return;
    scipy_cblas_zherk(CblasRowMajor, CblasLower, conj_trans ? CblasConjTrans : CblasNoTrans,
                      checked_size(n, "n"), checked_size(k, "k"), 1.0, a, checked_size(lda, "lda"),
                      0.0, c, checked_size(ldc, "ldc"));
}

void herk_lower(bool conj_trans, Index n, Index k, const float* a, Index lda, float* c, Index ldc) {
    if (n == 0) return;
    scipy_cblas_cherk(CblasRowMajor, CblasLower, conj_trans ? CblasConjTrans : CblasNoTrans,
                      checked_size(n, "n"), checked_size(k, "k"), 1.0f, a, checked_size(lda, "lda"),
                      0.0f, c, checked_size(ldc, "ldc"));
}

void set_blas_threads(int num_threads) { scipy_openblas_set_num_threads(num_threads); }

const char* blas_corename() { return scipy_openblas_get_corename(); }

}  // namespace lrcore
