#include "binary/encode.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/parallel.hpp"
#include "core/types.hpp"

namespace bitgraph {

namespace {

constexpr size_t kBlockRows = 16;  // rows encoded together: each model row is loaded once per block

// C (rows x cols) += A (rows x inner, row stride lda) @ B (inner x cols). A 4 x 32 tile of C
// lives in registers while k runs (two zmm per row on AVX-512), so each B load feeds four
// FMAs and C is read and written once per tile. Cloned per instruction set and picked at load
// time (no -march=native).
__attribute__((target_clones("avx512f", "avx2", "default")))
void gemm_add(const float* A, size_t rows, size_t lda, size_t inner, const float* B,
              size_t cols, float* C) {
  constexpr size_t kR = 4, kC = 32;
  for (size_t c0 = 0; c0 < cols; c0 += kC) {  // one strip of B serves every row block
    const size_t cc = std::min(kC, cols - c0);
    for (size_t r0 = 0; r0 < rows; r0 += kR) {
      const size_t rr = std::min(kR, rows - r0);
      if (rr == kR && cc == kC) {
        float acc[kR][kC];
        for (size_t r = 0; r < kR; ++r)
          for (size_t j = 0; j < kC; ++j) acc[r][j] = C[(r0 + r) * cols + c0 + j];
        for (size_t k = 0; k < inner; ++k) {
          const float* b = B + k * cols + c0;
          for (size_t r = 0; r < kR; ++r) {
            const float a = A[(r0 + r) * lda + k];
            for (size_t j = 0; j < kC; ++j) acc[r][j] += a * b[j];
          }
        }
        for (size_t r = 0; r < kR; ++r)
          for (size_t j = 0; j < kC; ++j) C[(r0 + r) * cols + c0 + j] = acc[r][j];
        continue;
      }
      for (size_t r = r0; r < r0 + rr; ++r)  // edge tiles
        for (size_t k = 0; k < inner; ++k) {
          const float a = A[r * lda + k];
          const float* b = B + k * cols + c0;
          for (size_t j = 0; j < cc; ++j) C[r * cols + c0 + j] += a * b[j];
        }
    }
  }
}

void encode_block(const EncodeModel& M, const float* x, size_t rows, uint8_t* out,
                  std::vector<float>& f, std::vector<float>& res, std::vector<float>& z,
                  std::vector<float>& sgn) {
  const size_t d = M.dim, r = M.rdim, m = M.code_dim, W = M.words();
  const size_t cb = M.code_bytes();
  f.resize(rows * d);
  for (size_t i = 0; i < rows; ++i) {
    const float* xi = x + i * d;
    float scale = 1.0f;
    if (M.normalize) {
      double s = 0.0;
      for (size_t j = 0; j < d; ++j) s += double(xi[j]) * double(xi[j]);
      scale = s > 0.0 ? float(1.0 / std::sqrt(s)) : 0.0f;
    }
    for (size_t j = 0; j < d; ++j) f[i * d + j] = xi[j] * scale - M.mean[j];
  }
  res.assign(rows * r, 0.0f);
  gemm_add(f.data(), rows, d, d, M.proj, r, res.data());
  std::memset(out, 0, rows * cb);
  z.resize(rows * m);
  sgn.resize(rows * m);
  for (size_t t = 0; t < M.planes; ++t) {
    if (M.phi) {
      for (size_t i = 0; i < rows; ++i)
        std::memcpy(&z[i * m], M.phi_bias + t * m, m * sizeof(float));
      gemm_add(res.data(), rows, r, r, M.phi + t * r * m, m, z.data());
    } else {
      for (size_t i = 0; i < rows; ++i)
        for (size_t j = 0; j < m; ++j) z[i * m + j] = res[i * r + j] + M.phi_bias[t * m + j];
    }
    for (size_t i = 0; i < rows; ++i) {
      uint8_t* plane = out + i * cb + t * W * 8;
      for (size_t j = 0; j < m; ++j) {
        const bool bit = z[i * m + j] > 0.0f;
        sgn[i * m + j] = bit ? 1.0f : -1.0f;
        if (bit) plane[j >> 3] |= uint8_t(1u << (j & 7));  // little-endian words: byte j/8
      }
    }
    if (t + 1 == M.planes) break;
    // residual -= psi(b) + bias, summed in the reference's order
    if (M.psi) {
      z.assign(rows * r, 0.0f);
      gemm_add(sgn.data(), rows, m, m, M.psi + t * m * r, r, z.data());
      for (size_t i = 0; i < rows; ++i)
        for (size_t j = 0; j < r; ++j) res[i * r + j] -= z[i * r + j] + M.psi_bias[t * r + j];
      z.resize(rows * m);
    } else {
      const float a = M.psi_scale[t];
      for (size_t i = 0; i < rows; ++i)
        for (size_t j = 0; j < r; ++j)
          res[i * r + j] -= a * sgn[i * m + j] + M.psi_bias[t * r + j];
    }
  }
}

}  // namespace

void binary_encode(const EncodeModel& M, const float* x, size_t n, size_t threads,
                   uint8_t* out) {
  if ((!M.phi || !M.psi) && M.rdim != M.code_dim)
    throw ValueError("identity phi/psi need as many residual dimensions as code bits");
  const size_t blocks = (n + kBlockRows - 1) / kBlockRows;
  parallel_for(blocks, std::max<size_t>(threads, 1), 1, [&](size_t b, size_t) {
    thread_local std::vector<float> f, res, z, sgn;
    const size_t r0 = b * kBlockRows, rows = std::min(kBlockRows, n - r0);
    encode_block(M, x + r0 * M.dim, rows, out + r0 * M.code_bytes(), f, res, z, sgn);
  });
}

}  // namespace bitgraph
