// k-selection over tiles of a distance matrix, merged across tiles (bitgraph top-k).
//
// The host scans the base tile by tile (python/bitgraph/_cuda/scan.py): a GEMM (float) or the
// code kernel (binary) writes the distances of a block of queries to `tile_rows` stored rows,
// and one of these kernels merges that tile into each query's running best `kc` keys
// (bg_common.cuh). Only tile-sized buffers exist, never nq x n.
//
// dist(q, j) = scale * tile[q * ld + j] + row_terms[j] + query_terms[q]   (terms optional)
//   l2 through a GEMM: scale -2, row_terms |x|^2, query_terms |q|^2; ip: scale -1; codes: 1.
//
// bg_select_small (kc <= 1024): one block per query, a sorted buffer in shared memory. A
//   tile element enters only if its key beats the current kc-th key (one compare: after the
//   first tiles almost nothing enters); when the buffer fills it is bitonic-sorted and cut
//   back to kc. Output: sorted keys.
// bg_select_radix (any kc, used above 1024): one block per query; the kc-th smallest key of
//   (best so far U tile) by eight 8-bit radix passes with a shared histogram, then every key
//   up to it is written out. Output: unsorted keys (the host sorts them at the end) and the
//   new threshold.
#include "bg_common.cuh"

__device__ __forceinline__ float bg_tile_dist(const float* tile, long long ld, int q, int j,
                                              float scale, const float* row_terms,
                                              const float* query_terms) {
  float d = scale * tile[(long long)q * ld + j];
  if (row_terms) d += row_terms[j];
  if (query_terms) d += query_terms[q];
  return d;
}

// Sorts buf[0, S) ascending (S a power of two, every thread of the block calls it).
__device__ void bg_bitonic_sort(bg_u64* buf, int S) {
  for (int size = 2; size <= S; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int t = threadIdx.x; t < (S >> 1); t += blockDim.x) {
        const int i = 2 * t - (t & (stride - 1));
        const int j = i + stride;
        const bool up = (i & size) == 0;
        const bg_u64 a = buf[i], b = buf[j];
        if ((a > b) == up) {
          buf[i] = b;
          buf[j] = a;
        }
      }
      __syncthreads();
    }
  }
}

extern "C" __global__ void bg_select_small(const float* __restrict__ tile, long long ld, int nq,
                                           int nt, bg_u32 slot0, float scale,
                                           const float* __restrict__ row_terms,
                                           const float* __restrict__ query_terms,
                                           const bg_u64* __restrict__ allow_bits,
                                           bg_u64* __restrict__ best, int kc, int S) {
  extern __shared__ bg_u64 buf[];
  __shared__ int count;
  __shared__ bg_u64 thresh;
  const int q = blockIdx.x;
  if (q >= nq) return;
  bg_u64* mine = best + (long long)q * kc;
  for (int i = threadIdx.x; i < S; i += blockDim.x) buf[i] = i < kc ? mine[i] : BG_EMPTY_KEY;
  if (threadIdx.x == 0) {
    count = kc;
    thresh = mine[kc - 1];
  }
  __syncthreads();
  for (int base = 0; base < nt; base += blockDim.x) {
    if (count + (int)blockDim.x > S) {  // uniform: count is read after a barrier
      const int used = count;
      __syncthreads();
      for (int i = used + threadIdx.x; i < S; i += blockDim.x) buf[i] = BG_EMPTY_KEY;
      __syncthreads();
      bg_bitonic_sort(buf, S);
      if (threadIdx.x == 0) {
        count = kc;
        thresh = buf[kc - 1];
      }
      __syncthreads();
    }
    const int j = base + threadIdx.x;
    if (j < nt) {
      const bg_u32 slot = slot0 + (bg_u32)j;
      if (bg_allowed(allow_bits, slot)) {
        const bg_u64 key =
            bg_key(bg_tile_dist(tile, ld, q, j, scale, row_terms, query_terms), slot);
        if (key < thresh) buf[atomicAdd(&count, 1)] = key;
      }
    }
    __syncthreads();
  }
  const int used = count;
  __syncthreads();
  for (int i = used + threadIdx.x; i < S; i += blockDim.x) buf[i] = BG_EMPTY_KEY;
  __syncthreads();
  bg_bitonic_sort(buf, S);
  for (int i = threadIdx.x; i < kc; i += blockDim.x) mine[i] = buf[i];
}

extern "C" __global__ void bg_select_radix(const float* __restrict__ tile, long long ld, int nq,
                                           int nt, bg_u32 slot0, float scale,
                                           const float* __restrict__ row_terms,
                                           const float* __restrict__ query_terms,
                                           const bg_u64* __restrict__ allow_bits,
                                           const bg_u64* __restrict__ best_in,
                                           bg_u64* __restrict__ best_out,
                                           bg_u64* __restrict__ thresholds, int kc) {
  __shared__ unsigned int hist[256];
  __shared__ bg_u64 prefix;
  __shared__ long long want;
  __shared__ int take_all;
  __shared__ int written;
  const int q = blockIdx.x;
  if (q >= nq) return;
  const bg_u64* old = best_in + (long long)q * kc;
  const bg_u64 thresh = thresholds[q];
  const long long length = (long long)kc + nt;
  if (threadIdx.x == 0) {
    prefix = 0;
    want = kc;
    take_all = 0;
    written = 0;
  }
  // Key i of the virtual array (best so far, then the tile's candidates below the threshold).
#define BG_KEY_AT(i, out)                                                              \
  do {                                                                                 \
    if ((i) < kc) {                                                                    \
      out = old[(i)];                                                                  \
    } else {                                                                           \
      const int j_ = (int)((i) - kc);                                                  \
      const bg_u32 s_ = slot0 + (bg_u32)j_;                                            \
      out = BG_EMPTY_KEY;                                                              \
      if (bg_allowed(allow_bits, s_)) {                                                \
        const bg_u64 k_ =                                                              \
            bg_key(bg_tile_dist(tile, ld, q, j_, scale, row_terms, query_terms), s_);  \
        if (k_ < thresh) out = k_;                                                     \
      }                                                                                \
    }                                                                                  \
  } while (0)
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
    __syncthreads();
    const bg_u64 high = shift == 56 ? 0ull : (~0ull << (shift + 8));
    const bg_u64 pre = prefix;
    for (long long i = threadIdx.x; i < length; i += blockDim.x) {
      bg_u64 key;
      BG_KEY_AT(i, key);
      if (key != BG_EMPTY_KEY && (key & high) == pre)
        atomicAdd(&hist[(unsigned)((key >> shift) & 255ull)], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      if (shift == 56) {
        long long t = 0;  // valid keys in all: at most kc means every one is kept
        for (int b = 0; b < 256; ++b) t += hist[b];
        if (t <= kc) take_all = 1;
      }
      if (!take_all) {
        long long below = 0;
        for (int b = 0; b < 256; ++b) {
          if (below + hist[b] >= want) {
            prefix = pre | ((bg_u64)b << shift);
            want -= below;
            break;
          }
          below += hist[b];
        }
      }
    }
    __syncthreads();
    if (take_all) break;
  }
  // Keys are unique: exactly kc of them are <= the kc-th smallest (all of them when fewer).
  const bg_u64 last = take_all ? BG_EMPTY_KEY - 1 : prefix;
  bg_u64* out = best_out + (long long)q * kc;
  for (long long i = threadIdx.x; i < length; i += blockDim.x) {
    bg_u64 key;
    BG_KEY_AT(i, key);
    if (key != BG_EMPTY_KEY && key <= last) out[atomicAdd(&written, 1)] = key;
  }
#undef BG_KEY_AT
  __syncthreads();
  for (int i = written + threadIdx.x; i < kc; i += blockDim.x) out[i] = BG_EMPTY_KEY;
  if (threadIdx.x == 0) thresholds[q] = take_all ? BG_EMPTY_KEY : prefix;
}
