// SDC and Hamming distances between binary codes (bitgraph's layout, docs/backend-contract.md
// "Binary codes"), for a block of queries against a tile of stored codes.
//
// Stored codes live on the device transposed, word-major: word w of slot s at
// codes_t[w * cap + s] (w = plane * words + word), so the threads of a warp, one slot each,
// read consecutive 8-byte words (coalesced). The host builds this from the CPU rows
// ((n, planes * words * 8) bytes, then an optional uint32 offset) when it uploads them.
// Query codes keep the CPU row layout (planes * words uint64), staged in shared memory.
//
// The integers are exactly the CPU's (csrc/binary/popcount_scalar.inc):
//   SDC     = sum_{i,j < P} popcount(q_i ^ d_j) << (2 (P - 1) - i - j)
//   Hamming = sum_{t < P} popcount(q_t ^ d_t)
// plus, for offset layouts, offset(query) + offset(row), summed as uint32 and then converted
// to float like CodeStore::distance (exact: the layout check keeps the sum below 2^24).
#include "bg_common.cuh"

#define BG_MAX_PLANES 8
#define BG_MAX_QUERY_BLOCK 8

extern "C" __global__ void bg_code_distances(const bg_u64* __restrict__ codes_t, long long cap,
                                             const bg_u32* __restrict__ offsets, int planes,
                                             int words, int sdc,
                                             const bg_u64* __restrict__ queries,
                                             const bg_u32* __restrict__ query_offsets, int nq,
                                             int query_block, bg_u32 slot0, int nt,
                                             float* __restrict__ out, long long ld) {
  extern __shared__ bg_u64 qs[];  // query_block * planes * words words
  const int pw = planes * words;
  const int q0 = blockIdx.y * query_block;
  const int nb = min(query_block, nq - q0);
  for (int i = threadIdx.x; i < nb * pw; i += blockDim.x) qs[i] = queries[(long long)q0 * pw + i];
  __syncthreads();
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= nt) return;
  const long long slot = (long long)slot0 + j;
  bg_u32 acc[BG_MAX_QUERY_BLOCK];
  for (int b = 0; b < BG_MAX_QUERY_BLOCK; ++b) acc[b] = 0;
  for (int w = 0; w < words; ++w) {
    bg_u64 d[BG_MAX_PLANES];
    for (int p = 0; p < planes; ++p) d[p] = codes_t[(long long)(p * words + w) * cap + slot];
    for (int b = 0; b < nb; ++b) {
      const bg_u64* qb = qs + b * pw;
      bg_u32 s = 0;
      if (sdc) {
        for (int i = 0; i < planes; ++i) {
          const bg_u64 qw = qb[i * words + w];
          for (int p = 0; p < planes; ++p)
            s += (bg_u32)__popcll(qw ^ d[p]) << (2 * (planes - 1) - i - p);
        }
      } else {
        for (int p = 0; p < planes; ++p) s += (bg_u32)__popcll(qb[p * words + w] ^ d[p]);
      }
      acc[b] += s;
    }
  }
  const bg_u32 own = offsets ? offsets[slot] : 0u;
  for (int b = 0; b < nb; ++b) {
    const bg_u32 total = acc[b] + (offsets ? own + query_offsets[q0 + b] : 0u);
    out[(long long)(q0 + b) * ld + j] = (float)total;
  }
}
