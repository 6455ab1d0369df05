// Exact scan of binary codes with the lookup-table SDC kernel (binary/fastscan.hpp): the flat
// index keeps its code rows in the fast-scan block layout too, and a batch of queries reads
// each cache-sized run of blocks once.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "binary/fastscan.hpp"
#include "core/parallel.hpp"
#include "core/topk.hpp"
#include "flat/first_below.hpp"
#include "storage/code_store.hpp"

namespace bitgraph {

// The block copy of a binary store's rows (Hamming, or SDC / asymmetric over 1 to 4 planes;
// else disabled).
struct FastscanBlocks {
  bool enabled = false;
  size_t planes = 0;
  size_t code_dim = 0;  // 64 * words: padding bits are 0 on both sides and cost nothing
  size_t block_bytes = 0;
  bool asymmetric = false;  // tables from asymmetric queries (the same document blocks)
  Buffer<uint8_t> bytes;
  Buffer<uint32_t> offsets;  // per slot, for rows with offsets (else empty)

  void configure(const CodeStore& store) {
    const CodeLayout& layout = store.code_layout();
    if (store.metric() == Metric::kHamming) {
      // Hamming compares plane t with plane t only: that is one-plane SDC over the whole row.
      planes = 1;
      code_dim = 64 * layout.words * layout.planes;
    } else if (layout.planes <= 4) {
      planes = layout.planes;
      code_dim = 64 * layout.words;
      asymmetric = layout.query_bits != 0;
    } else {
      return;
    }
    enabled = true;
    block_bytes = fastscan_block_bytes(planes, code_dim);
    has_offsets = layout.offsets;
  }
  bool has_offsets = false;
  // Re-packs the blocks holding slots [first, n_slots) (the first may be partly filled).
  void repack(const CodeStore& store, size_t first, size_t n_slots) {
    if (!enabled) return;
    const size_t b0 = first / kFastscanBlockDocs;
    const size_t n_blocks = (n_slots + kFastscanBlockDocs - 1) / kFastscanBlockDocs;
    bytes.resize(n_blocks * block_bytes);
    const size_t s0 = b0 * kFastscanBlockDocs;
    if (n_slots <= s0) return;
    if (!has_offsets) {
      fastscan_pack(store.row(s0), n_slots - s0, planes, code_dim, bytes.data() + b0 * block_bytes);
      return;
    }
    // Rows carry an offset after the code: pack a contiguous copy of the codes, keep the
    // offsets beside the blocks.
    const CodeLayout& layout = store.code_layout();
    const size_t cb = layout.code_bytes();
    std::vector<uint8_t> codes((n_slots - s0) * cb);
    offsets.resize(n_slots);
    for (size_t s = s0; s < n_slots; ++s) {
      __builtin_memcpy(codes.data() + (s - s0) * cb, store.row(s), cb);
      offsets[s] = code_offset(store.row(s), layout);
    }
    fastscan_pack(codes.data(), n_slots - s0, planes, code_dim, bytes.data() + b0 * block_bytes);
  }
  size_t nbytes() const { return bytes.owned_bytes() + offsets.owned_bytes(); }
  void shrink_to_fit() {
    bytes.shrink_to_fit();
    offsets.shrink_to_fit();
  }
};

// tops[i] (reset by the caller) receives the k closest admissible slots below n_slots of query
// row i (rows laid out as the store's, `layout`, at `queries`).
template <class Admissible>
void code_scan(const FastscanBlocks& fb, size_t n_slots, const uint8_t* queries,
               const CodeLayout& layout, size_t nq, size_t threads, const Admissible& admissible,
               std::vector<TopK>& tops) {
  const size_t query_bytes = layout.query_bytes();
  threads = std::max<size_t>(threads, 1);
  const size_t per_thread = (nq + threads - 1) / threads;
  const size_t queries_per_block = std::clamp<size_t>(per_thread, 1, 16);
  const size_t n_query_blocks = (nq + queries_per_block - 1) / queries_per_block;
  // Documents per kernel call: each call rebuilds the queries' lookup tables (microseconds),
  // so a call covers 32k documents (the kernel tiles them for the cache itself); measured at
  // 96-byte codes, 2,720-document calls spent as long in table building as in scanning.
  constexpr size_t docs_per_run = 32 * 1024;
  parallel_for(n_query_blocks, threads, 1, [&](size_t block, size_t) {
    const size_t q0 = block * queries_per_block;
    const size_t q1 = std::min(nq, q0 + queries_per_block);
    std::vector<uint32_t> dists((q1 - q0) * docs_per_run);
    // The kernel reads bare query codes: with offsets, copy them out of their rows.
    const size_t cb = layout.query_code_bytes();
    std::vector<uint8_t> query_codes;
    const uint8_t* qcodes = queries + q0 * query_bytes;
    if (layout.offsets) {
      query_codes.resize((q1 - q0) * cb);
      for (size_t qi = q0; qi < q1; ++qi)
        __builtin_memcpy(query_codes.data() + (qi - q0) * cb, queries + qi * query_bytes, cb);
      qcodes = query_codes.data();
    }
    const auto kernel = fb.asymmetric ? fastscan_asymmetric_batch : fastscan_sdc_batch;
    for (size_t begin = 0; begin < n_slots; begin += docs_per_run) {
      const size_t n = std::min(docs_per_run, n_slots - begin);
      kernel(fb.bytes.data() + (begin / kFastscanBlockDocs) * fb.block_bytes, n, qcodes,
             q1 - q0, fb.planes, fb.code_dim, dists.data());
      for (size_t qi = q0; qi < q1; ++qi) {
        TopK& top = tops[qi];
        uint32_t* d = dists.data() + (qi - q0) * n;
        if (layout.offsets) {  // one vectorised pass, before the skip scan compares
          const uint32_t oq = query_offset(queries + qi * query_bytes, layout);
          const uint32_t* od = fb.offsets.data() + begin;
          for (size_t j = 0; j < n; ++j) d[j] += oq + od[j];
        }
        // Distances are exact integers, so "closer than the k-th" is an integer compare
        // against a threshold that only changes when something enters the heap.
        uint32_t limit = top.full() ? uint32_t(top.worst()) : UINT32_MAX;
        for (size_t j = first_below(d, 0, n, limit); j < n; j = first_below(d, j + 1, n, limit)) {
          if (!admissible(uint32_t(begin + j))) continue;
          top.push(float(d[j]), uint32_t(begin + j));
          if (top.full()) limit = uint32_t(top.worst());
        }
      }
    }
  });
}

}  // namespace bitgraph
