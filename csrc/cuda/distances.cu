// Direct float distances: the exact re-score of GEMM candidates (FlatIndex) and the float
// re-rank of code candidates (BinaryIndex), plus the squared row norms the GEMM form of l2
// needs.
//
// Why a re-score: the GEMM ranks by |x|^2 - 2 <q, x> + |q|^2, which rounds differently from
// the CPU's direct sum of (q - x)^2 (csrc/simd: 4 to 32 partial sums depending on the SIMD
// level, FMA on AVX2 / AVX-512, then a horizontal add). The GEMM only chooses a candidate
// margin; every returned distance comes from this kernel, which sums (q - x)^2 (or q * x)
// directly in float32 with FMA: one warp per candidate, lanes strided over the dimensions,
// then a butterfly sum. It equals the CPU bit for bit on exactly representable data and
// within a few ulps otherwise (the tests' tolerance).
//
// Candidates are slots (int64, < 0 for none); outputs are keys (bg_common.cuh) so the host's
// final sort orders by (distance, slot) like the CPU.
#include "bg_common.cuh"

template <bool HALF>
__device__ __forceinline__ float bg_load(const void* base, long long i) {
  if (HALF) return bg_half_to_float(((const unsigned short*)base)[i]);
  return ((const float*)base)[i];
}

template <bool HALF>
__device__ void bg_candidate_distances(const void* __restrict__ base, int dim,
                                       const float* __restrict__ queries, long long q_ld,
                                       const long long* __restrict__ slots, int nq, int nc,
                                       int l2, bg_u64* __restrict__ out_keys) {
  const int lane = threadIdx.x & 31;
  const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  if (warp >= (long long)nq * nc) return;
  const int q = (int)(warp / nc);
  const long long slot = slots[warp];
  if (slot < 0) {
    if (lane == 0) out_keys[warp] = BG_EMPTY_KEY;
    return;
  }
  const float* qv = queries + (long long)q * q_ld;
  const long long row = slot * dim;
  float acc = 0.0f;
  for (int i = lane; i < dim; i += 32) {
    const float x = bg_load<HALF>(base, row + i);
    if (l2) {
      const float d = qv[i] - x;
      acc = fmaf(d, d, acc);
    } else {
      acc = fmaf(qv[i], x, acc);
    }
  }
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (lane == 0) out_keys[warp] = bg_key(l2 ? acc : -acc, (bg_u32)slot);
}

extern "C" __global__ void bg_candidate_distances_f32(const float* base, int dim,
                                                      const float* queries, long long q_ld,
                                                      const long long* slots, int nq, int nc,
                                                      int l2, bg_u64* out_keys) {
  bg_candidate_distances<false>(base, dim, queries, q_ld, slots, nq, nc, l2, out_keys);
}

extern "C" __global__ void bg_candidate_distances_f16(const unsigned short* base, int dim,
                                                      const float* queries, long long q_ld,
                                                      const long long* slots, int nq, int nc,
                                                      int l2, bg_u64* out_keys) {
  bg_candidate_distances<true>(base, dim, queries, q_ld, slots, nq, nc, l2, out_keys);
}

// out[r] = |row r|^2 for rows [0, n) (fp32 accumulation; fp16 rows widened exactly).
template <bool HALF>
__device__ void bg_row_sqnorms(const void* __restrict__ base, int dim, long long n,
                               float* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const long long r = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  if (r >= n) return;
  float acc = 0.0f;
  for (int i = lane; i < dim; i += 32) {
    const float x = bg_load<HALF>(base, r * dim + i);
    acc = fmaf(x, x, acc);
  }
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (lane == 0) out[r] = acc;
}

extern "C" __global__ void bg_row_sqnorms_f32(const float* base, int dim, long long n,
                                              float* out) {
  bg_row_sqnorms<false>(base, dim, n, out);
}

extern "C" __global__ void bg_row_sqnorms_f16(const unsigned short* base, int dim, long long n,
                                              float* out) {
  bg_row_sqnorms<true>(base, dim, n, out);
}
