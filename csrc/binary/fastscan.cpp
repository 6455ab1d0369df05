// Fast-scan SDC: block packing, per-query tables, the portable scalar scan and the runtime
// choice of instruction set. The SIMD scans live in fastscan_avx2.cpp / fastscan_avx512.cpp,
// each compiled with only its own flags.
#include "binary/fastscan.hpp"
#include "core/cpu_features.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "binary/binary_kernels.hpp"
#include "binary/fastscan_detail.hpp"
#include "core/types.hpp"

namespace bitgraph {

namespace fd = fastscan_detail;

namespace {

void check_shape(size_t planes, size_t code_dim) {
  // P = 5 would need table entries up to 31 * 31, past uint8.
  if (planes < 1 || planes > 4)
    throw ValueError("fast-scan SDC supports 1 to 4 planes, got " + std::to_string(planes));
  if (code_dim < 1) throw ValueError("fast-scan SDC needs code_dim >= 1");
}

size_t words_per_plane(size_t code_dim) { return (code_dim + 63) / 64; }

inline unsigned code_bit(const uint8_t* plane, size_t k) { return (plane[k >> 3] >> (k & 7)) & 1u; }

// spread[v]: the 8 bits of v moved to bits 0, P, 2P, ... (one code byte of one plane, laid
// out in the flattened dimension-major, plane-minor order).
void make_spread(size_t planes, uint32_t* spread) {
  for (uint32_t v = 0; v < 256; ++v) {
    uint32_t s = 0;
    for (uint32_t b = 0; b < 8; ++b) s |= ((v >> b) & 1u) << (b * planes);
    spread[v] = s;
  }
}

// Nibbles of one code row in flattened order. Eight dimensions x P planes are exactly 2P
// nibbles, so each code byte index yields whole nibbles. `nib` holds at least
// max(npos, 2P * ceil(code_dim / 8)) bytes; positions past the code come out 0.
void doc_nibbles(const uint8_t* code, size_t planes, size_t code_dim, const uint32_t* spread,
                 uint8_t* nib) {
  const size_t plane_bytes = words_per_plane(code_dim) * 8;
  const size_t nbytes = (code_dim + 7) / 8;
  // Padding bits are 0 by contract; masking the last byte keeps packing exact regardless.
  const unsigned last_mask = code_dim % 8 ? (1u << (code_dim % 8)) - 1 : 0xFFu;
  for (size_t B = 0; B < nbytes; ++B) {
    const unsigned mask = B + 1 == nbytes ? last_mask : 0xFFu;
    uint32_t bits = 0;
    for (size_t j = 0; j < planes; ++j) bits |= spread[code[j * plane_bytes + B] & mask] << j;
    for (size_t t = 0; t < 2 * planes; ++t)
      nib[2 * planes * B + t] = uint8_t((bits >> (4 * t)) & 15u);
  }
}

struct Level {
  const char* name;
  fd::ScanFn scan;
};

// The fast-scan kernels' levels (core/cpu_features.hpp decides with the one rule).
Level choose_level_for_scan() {
  const SimdLevel level = choose_level(kAvx2, kAvx512f | kAvx512bw | kAvx512vl | kAvx2);
#if BITGRAPH_HAVE_X86_SIMD
  if (level == SimdLevel::kAvx512) return {"avx512", fd::scan_avx512};
  if (level == SimdLevel::kAvx2) return {"avx2", fd::scan_avx2};
#endif
  (void)level;
  return {"generic", fd::scan_generic};
}

const Level& active_level() {
  static const Level level = choose_level_for_scan();
  return level;
}

}  // namespace

namespace fastscan_detail {

namespace {

// Table rows from per-bit costs: bit g = 4p + t of the flattened code (dimension k, plane j)
// costs c0 when clear and c1 when set (cost(k, j, c0, c1); bits past code_dim cost 0), and
// entry v of row p sums the costs of the nibble's bits as v sets them.
template <class Cost>
void fill_rows(size_t planes, size_t code_dim, size_t npos, uint8_t* lut, const Cost& cost) {
  size_t k = 0, j = 0;  // dimension and plane of bit g = 4p + t (no divisions in the loop)
  for (size_t p = 0; p < npos; ++p) {
    int base = 0, delta[4];
    for (size_t t = 0; t < 4; ++t) {
      int c0 = 0, c1 = 0;
      if (k < code_dim) cost(k, j, c0, c1);
      base += c0;
      delta[t] = c1 - c0;
      if (++j == planes) j = 0, ++k;
    }
    // entry[v] = entry[v without its lowest set bit] + delta[that bit].
    int e[16];
    e[0] = base;
    for (unsigned v = 1; v < 16; ++v) e[v] = e[v & (v - 1)] + delta[__builtin_ctz(v)];
    uint8_t* row = lut + 16 * p;
    for (unsigned v = 0; v < 16; ++v) row[v] = uint8_t(e[v]);
  }
}

}  // namespace

unsigned build_lut(const uint8_t* query_code, size_t planes, size_t code_dim, size_t npos,
                   uint8_t* lut) {
  const size_t plane_bytes = words_per_plane(code_dim) * 8;
  const int full = (1 << planes) - 1;  // sum_i w_i
  if (4 % planes == 0) {
    // P = 1, 2, 4: a nibble holds whole dimensions, so the entry depends only on the query's
    // own nibble there: row p is row qnib[p] of one fixed 16 x 16 table (what pshufb reads).
    uint8_t table[16][16];
    const unsigned dims = unsigned(4 / planes), pmask = unsigned(full);
    for (unsigned a = 0; a < 16; ++a)
      for (unsigned b = 0; b < 16; ++b) {
        unsigned e = 0;
        for (unsigned d = 0; d < dims; ++d) {
          const unsigned qa = (a >> (d * planes)) & pmask, db = (b >> (d * planes)) & pmask;
          for (unsigned i = 0; i < planes; ++i)
            for (unsigned j = 0; j < planes; ++j)
              if (((qa >> i) ^ (db >> j)) & 1u) e += 1u << ((planes - 1 - i) + (planes - 1 - j));
        }
        table[a][b] = uint8_t(e);
      }
    uint32_t spread[256];
    make_spread(planes, spread);
    std::vector<uint8_t> qnib(std::max(npos, 2 * planes * ((code_dim + 7) / 8)), 0);
    doc_nibbles(query_code, planes, code_dim, spread, qnib.data());
    for (size_t p = 0; p < npos; ++p) std::memcpy(lut + 16 * p, table[qnib[p]], 16);
    // Padding positions: the document nibble there is 0 and so is qnib, and table[0][0] = 0.
    return planes == 4 ? 225u : planes == 2 ? 18u : 4u;
  }
  // Q_k = sum_i w_i q_ik: the query's integer at dimension k.
  std::vector<uint8_t> qk(code_dim);
  for (size_t k = 0; k < code_dim; ++k) {
    unsigned q = 0;
    for (size_t i = 0; i < planes; ++i)
      q |= code_bit(query_code + i * plane_bytes, k) << (planes - 1 - i);
    qk[k] = uint8_t(q);
  }
  // cost(bit g = k * P + j, value b) = w_j * sum_i w_i [q_ik != b]
  //   = w_j * Q_k when b = 0 and w_j * (full - Q_k) when b = 1.
  fill_rows(planes, code_dim, npos, lut, [&](size_t k, size_t j, int& c0, int& c1) {
    const int wj = 1 << (planes - 1 - j);
    c0 = wj * qk[k];
    c1 = wj * (full - qk[k]);
  });
  // Largest possible entry: the four bits of a nibble each cost at most w_j * full; the
  // pattern of planes repeats every 3 nibbles at most.
  unsigned bound = 0;
  for (size_t p = 0; p < 12; ++p) {
    unsigned s = 0;
    for (size_t t = 0; t < 4; ++t) s += unsigned((1 << (planes - 1 - (4 * p + t) % planes)) * full);
    bound = std::max(bound, s);
  }
  return bound;
}

unsigned build_lut_asymmetric(const uint8_t* query, size_t planes, size_t code_dim,
                              size_t npos, uint8_t* lut) {
  constexpr size_t B = kAsymmetricQueryBits;
  const size_t plane_bytes = words_per_plane(code_dim) * 8;
  const int top = (1 << B) - 1;
  fill_rows(planes, code_dim, npos, lut, [&](size_t k, size_t j, int& c0, int& c1) {
    int u = 0;
    for (size_t i = 0; i < B; ++i)
      u |= int(code_bit(query + (j * B + i) * plane_bytes, k)) << (B - 1 - i);
    c0 = u;
    c1 = top - u;
  });
  return 4u * unsigned(top);  // four bits per nibble, each costing at most 2^B - 1
}

void scan_generic(const ScanArgs& a) {
  const size_t block_bytes = a.npos * 16;
  for (size_t b = 0; b * kFastscanBlockDocs < a.n; ++b) {
    const uint8_t* blk = a.blocks + b * block_bytes;
    size_t base = b * kFastscanBlockDocs, cnt = std::min(kFastscanBlockDocs, a.n - base);
    for (size_t q = 0; q < a.nq; ++q) {
      uint32_t acc[kFastscanBlockDocs] = {};
      const uint8_t* lut = a.luts[q];
      for (size_t p = 0; p < a.npos; ++p) {
        const uint8_t* row = lut + 16 * p;
        const uint8_t* bytes = blk + 16 * p;
        for (size_t i = 0; i < 16; ++i) {
          acc[i] += row[bytes[i] & 15u];
          acc[i + 16] += row[bytes[i] >> 4];
        }
      }
      std::memcpy(a.out + q * a.out_stride + base, acc, cnt * sizeof(uint32_t));
    }
  }
}

}  // namespace fastscan_detail

size_t fastscan_positions(size_t planes, size_t code_dim) {
  size_t nib = (planes * code_dim + 3) / 4;
  return (nib + 3) / 4 * 4;
}

size_t fastscan_block_bytes(size_t planes, size_t code_dim) {
  return 16 * fastscan_positions(planes, code_dim);
}

void fastscan_pack(const uint8_t* codes, size_t n, size_t planes, size_t code_dim,
                   uint8_t* blocks) {
  check_shape(planes, code_dim);
  const size_t npos = fastscan_positions(planes, code_dim);
  const size_t row_bytes = planes * words_per_plane(code_dim) * 8;
  const size_t block_bytes = 16 * npos;
  const size_t stride = std::max(npos, 2 * planes * ((code_dim + 7) / 8));
  uint32_t spread[256];
  make_spread(planes, spread);
  // Nibbles of the block's 32 documents (document-major), then transposed into the block.
  std::vector<uint8_t> nib(kFastscanBlockDocs * stride);
  for (size_t b = 0; b * kFastscanBlockDocs < n; ++b) {
    std::fill(nib.begin(), nib.end(), uint8_t(0));
    const size_t cnt = std::min(kFastscanBlockDocs, n - b * kFastscanBlockDocs);
    for (size_t i = 0; i < cnt; ++i)
      doc_nibbles(codes + (b * kFastscanBlockDocs + i) * row_bytes, planes, code_dim, spread,
                  nib.data() + i * stride);
    uint8_t* blk = blocks + b * block_bytes;
    for (size_t p = 0; p < npos; ++p)
      for (size_t i = 0; i < 16; ++i)
        blk[16 * p + i] = uint8_t(nib[i * stride + p] | nib[(i + 16) * stride + p] << 4);
  }
}

void fastscan_sdc(const uint8_t* blocks, size_t n, const uint8_t* query_code, size_t planes,
                  size_t code_dim, uint32_t* out) {
  fastscan_sdc_batch(blocks, n, query_code, 1, planes, code_dim, out);
}

namespace {

using LutBuilder = unsigned (*)(const uint8_t*, size_t, size_t, size_t, uint8_t*);

// nq queries of `query_bytes` each, their tables made by `build`, against the blocks.
void scan_batch(const uint8_t* blocks, size_t n, const uint8_t* queries, size_t nq,
                size_t query_bytes, LutBuilder build, size_t planes, size_t code_dim,
                uint32_t* out);

}  // namespace

void fastscan_sdc_batch(const uint8_t* blocks, size_t n, const uint8_t* queries, size_t nq,
                        size_t planes, size_t code_dim, uint32_t* out) {
  check_shape(planes, code_dim);
  scan_batch(blocks, n, queries, nq, planes * words_per_plane(code_dim) * 8, fd::build_lut,
             planes, code_dim, out);
}

void fastscan_asymmetric_batch(const uint8_t* blocks, size_t n, const uint8_t* queries,
                               size_t nq, size_t planes, size_t code_dim, uint32_t* out) {
  check_shape(planes, code_dim);
  scan_batch(blocks, n, queries, nq,
             planes * kAsymmetricQueryBits * words_per_plane(code_dim) * 8,
             fd::build_lut_asymmetric, planes, code_dim, out);
}

namespace {

void scan_batch(const uint8_t* blocks, size_t n, const uint8_t* queries, size_t nq,
                size_t query_bytes, LutBuilder build, size_t planes, size_t code_dim,
                uint32_t* out) {
  if (n == 0 || nq == 0) return;
  const size_t npos = fastscan_positions(planes, code_dim);
  const size_t row_bytes = query_bytes;
  const size_t block_bytes = 16 * npos;
  const fd::ScanFn scan = active_level().scan;
  // Tables for a bounded group of queries at a time (a table is up to 16 KiB).
  constexpr size_t kQueryGroup = 64;
  // Blocks per tile: the tile stays in L2 while every query group of 4 passes over it.
  const size_t tile_blocks = std::max<size_t>(1, (256u << 10) / block_bytes);
  const size_t nblocks = (n + kFastscanBlockDocs - 1) / kFastscanBlockDocs;
  std::vector<uint8_t> luts(std::min(nq, kQueryGroup) * block_bytes);
  for (size_t q0 = 0; q0 < nq; q0 += kQueryGroup) {
    const size_t gq = std::min(kQueryGroup, nq - q0);
    unsigned bound = 0;
    const uint8_t* lut_ptr[kQueryGroup];
    for (size_t q = 0; q < gq; ++q) {
      bound = build(queries + (q0 + q) * row_bytes, planes, code_dim, npos,
                    luts.data() + q * block_bytes);
      lut_ptr[q] = luts.data() + q * block_bytes;
    }
    for (size_t t0 = 0; t0 < nblocks; t0 += tile_blocks) {
      const size_t first = t0 * kFastscanBlockDocs;
      const size_t cnt = std::min(tile_blocks * kFastscanBlockDocs, n - first);
      for (size_t q = 0; q < gq; q += fd::kMaxScanQueries) {
        fd::ScanArgs args{blocks + t0 * block_bytes, cnt, npos, lut_ptr + q,
                          std::min(fd::kMaxScanQueries, gq - q), bound,
                          out + (q0 + q) * n + first, n};
        scan(args);
      }
    }
  }
}

}  // namespace

void fastscan_lut_scan(const uint8_t* blocks, size_t n, size_t npos, const uint8_t* const* luts,
                       size_t nq, unsigned max_entry, uint32_t* out, size_t out_stride) {
  if (n == 0 || nq == 0) return;
  fd::ScanArgs args{blocks, n, npos, luts, nq, max_entry, out, out_stride};
  active_level().scan(args);
}

const char* fastscan_level() { return active_level().name; }

}  // namespace bitgraph
