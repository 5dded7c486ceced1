// Run-time dispatch to AVX2 code paths (internal): the build itself targets baseline
// x86-64 (SSE2), and the AVX2 variants of hot loops run where the CPU has it.
#pragma once

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LRCORE_AVX2_DISPATCH 1
#include <immintrin.h>
#endif

namespace lrcore::detail {

#if defined(LRCORE_AVX2_DISPATCH)
inline bool cpu_has_avx2() {
    static const bool has = __builtin_cpu_supports("avx2") != 0;
    return has;
}
#endif

}  // namespace lrcore::detail
