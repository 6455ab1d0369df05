// IVF search (ivf/ivf_search.hpp): coarse probe, one quantized table per query, fast-scan of
// the probed lists, exact re-rank of the best candidates.
//
// Why list-major: a batch is cut into chunks of queries per thread; each chunk's (list, query)
// probes are grouped by list, and every probed list is scanned once for up to 4 of its queries
// at a time (the fast-scan kernel shares each block load and nibble split between them). Lists
// lie anywhere in memory, so per-query scans spent most of their time waiting on the first
// loads of each list and splitting the same nibbles again (glove-50 390k, 96 of 1873 lists:
// 87 -> see the commit message for the figures after).
#include "ivf/ivf_search.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "binary/fastscan.hpp"
#include "core/parallel.hpp"
#include "core/topk.hpp"
#include "flat/first_below.hpp"
#include "simd/kernels.hpp"

namespace bitgraph {

size_t ivf_positions(size_t subspaces) { return (subspaces + 3) / 4 * 4; }

namespace {

constexpr size_t kCodebookSize = 16;
// Queries per chunk: enough that a probed list usually serves several of them, few enough
// that their tables (npos * 16 bytes each) and heaps stay in L2.
constexpr size_t kChunkQueries = 256;
// Most queries one kernel call scores together (fastscan_detail::kMaxScanQueries).
constexpr size_t kScanGroup = 4;
// The blocks of the list scanned next are requested while this one is scanned (lists lie
// anywhere in memory); at most this many bytes, the hardware prefetcher takes it from there.
constexpr size_t kPrefetchBytes = 8192;
// Bins of the histogram that bounds a query's nearest list (collect_nearest): fine enough
// that the rows below the bound are about the pool, few enough to clear per query.
constexpr size_t kHistBins = 512;

struct Probe {
  uint32_t list;
  uint32_t query;  // within the chunk
  float base;      // estimate of the list's rows before their table sums
};

// A query's candidates: every estimate below `bound` is appended; when the buffer holds twice
// the pool, the pool's best are kept and `bound` drops to the worst of them. Cheaper than a
// heap push per admitted row (list-major scans tighten the bound later than nearest-first).
struct Reservoir {
  std::vector<Scored> items;
  size_t pool = 0;
  float bound = std::numeric_limits<float>::infinity();

  void reset(size_t pool_size) {
    pool = pool_size;
    items.clear();
    items.reserve(2 * pool_size);
    bound = std::numeric_limits<float>::infinity();
  }
  void push(float dist, uint32_t id) {
    items.push_back({dist, id});
    if (items.size() >= 2 * pool) shrink();
  }
  void shrink() {
    // By estimate only (no id tie-break: one compare instead of two, and these are only
    // candidates for the exact re-rank; the input order, hence the result, is the same for
    // any batch or thread count).
    std::nth_element(items.begin(), items.begin() + (pool - 1), items.end(),
                     [](const Scored& a, const Scored& b) { return a.dist < b.dist; });
    items.resize(pool);
    bound = items[pool - 1].dist;  // nth_element left the largest kept estimate there
  }
  // The pool's best, in no particular order.
  const std::vector<Scored>& best() {
    if (items.size() > pool) shrink();
    return items;
  }
};

// Per-thread buffers, sized once per call.
struct Scratch {
  std::vector<float> coarse;      // coarse distances of a tile group of queries
  std::vector<float> tile_min;    // the tiles kernel's per-tile minima (unused here)
  std::vector<float> table;       // m x 16 float table of one query
  std::vector<uint8_t> luts;      // chunk x npos x 16 quantized tables
  std::vector<float> inv_scale;   // per chunk query
  std::vector<Reservoir> cands;   // per chunk query: candidates
  TopK results;                   // one query's exact top k
  std::vector<Scored> near;       // a query's nearest lists
  std::vector<float> sample;      // every 8th coarse distance (the lists' threshold)
  std::vector<Probe> probes;      // chunk x nprobe
  std::vector<Probe> by_list;     // the same grouped by list
  std::vector<uint32_t> list_first;  // nlist + 1 counting-sort offsets
  std::vector<uint32_t> cursor;   // nlist fill positions of the counting sort
  std::vector<uint32_t> sums;     // table sums of one list for kScanGroup queries
  std::vector<uint32_t> hist;     // table sums of the nearest list, binned
  std::vector<uint32_t> cand;     // candidate slots of one query
  std::vector<float> exact;       // their exact distances
};

// The query's table: entry [j][c] = -w <q_j, codebook[j][c]> (w = 2 for l2, 1 for ip),
// quantized as round((entry - min_j) * scale) with one scale for all rows, so a table sum s
// stands for the estimate sum_j min_j + s / scale. Returns that offset; sets *inv_scale.
float build_table(const IvfPartition& p, const float* q, float weight, Scratch& s,
                  uint8_t* lut, size_t npos, float* inv_scale) {
  const size_t m = p.subspaces, ds = p.subspace_dim;
  float span = 0.f, offset = 0.f;
  float* t = s.table.data();
  for (size_t j = 0; j < m; ++j) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (size_t c = 0; c < kCodebookSize; ++c) {
      const float* book = p.codebooks + (j * kCodebookSize + c) * ds;
      float dot = 0.f;
      for (size_t d = 0; d < ds; ++d) {
        const size_t dim = j * ds + d;
        if (dim < p.dim) dot += q[dim] * book[d];  // past dim the query is 0 (padding)
      }
      const float e = -weight * dot;
      t[j * kCodebookSize + c] = e;
      lo = std::min(lo, e);
      hi = std::max(hi, e);
    }
    for (size_t c = 0; c < kCodebookSize; ++c) t[j * kCodebookSize + c] -= lo;
    offset += lo;
    span = std::max(span, hi - lo);
  }
  const float scale = span > 0.f ? float(kIvfTableTop) / span : 1.f;
  *inv_scale = 1.f / scale;
  std::fill(lut, lut + npos * kCodebookSize, uint8_t(0));  // padding positions cost 0
  for (size_t j = 0; j < m * kCodebookSize; ++j) {
    // Entries are >= 0: adding 0.5 and truncating rounds (half up), without a libm call.
    const float v = std::min(float(kIvfTableTop), t[j] * scale + 0.5f);
    lut[j] = uint8_t(std::max(0.f, v));
  }
  return offset;
}

// A filter costs a look-up per candidate; removed rows are already slot -1 in the packing.
inline bool admissible(const IvfRows& r, int32_t slot) {
  if (slot < 0) return false;
  if (r.allowed && !((r.allowed[size_t(slot) >> 6] >> (size_t(slot) & 63)) & 1u)) return false;
  return true;
}

// The query's nprobe nearest lists by (distance, list), nearest first. A threshold from every
// 8th list (the rank that should leave about 1.5 nprobe below it) admits candidates with one
// predictable compare each, and only those are sorted; a heap push per list and nth_element
// over all lists each cost more than the coarse distances themselves.
const std::vector<Scored>& nearest_lists(const float* coarse, size_t nlist, size_t nprobe,
                                         Scratch& s) {
  std::vector<Scored>& out = s.near;
  out.clear();
  // (Up to a quarter of the lists: past that the sample's rank is too close to its end to
  // leave a margin, and sorting every list costs little beside scanning that many.)
  if (nprobe * 4 <= nlist) {
    std::vector<float>& sample = s.sample;
    sample.clear();
    for (size_t l = 0; l < nlist; l += 8) sample.push_back(coarse[l]);
    const size_t rank = std::min(sample.size() - 1, (3 * nprobe) / 16 + 1);
    std::nth_element(sample.begin(), sample.begin() + rank, sample.end());
    const float threshold = sample[rank];
    for (size_t l = 0; l < nlist; ++l)
      if (coarse[l] <= threshold) out.push_back({coarse[l], uint32_t(l)});
  }
  if (out.size() < nprobe) {  // the sample misled (or few lists): take every list
    out.clear();
    for (size_t l = 0; l < nlist; ++l) out.push_back({coarse[l], uint32_t(l)});
  }
  if (out.size() > nprobe)
    std::nth_element(out.begin(), out.begin() + (nprobe - 1), out.end(), Closer{});
  out.resize(nprobe);
  std::sort(out.begin(), out.end(), Closer{});
  return out;
}

// The integer bound on a list's table sums: est = base + sum * inv_scale can beat `worst`
// only if sum < limit (rounded up, so the float test after it decides the boundary).
inline uint32_t sum_limit(float worst, float base, float scale) {
  if (!(worst < std::numeric_limits<float>::infinity())) return UINT32_MAX;
  const float room = (worst - base) * scale;
  if (!(room > 0.f)) return 0;
  if (room >= 4.0e9f) return UINT32_MAX;
  return uint32_t(std::ceil(room)) + 1;
}

inline void prefetch_list(const IvfPartition& p, uint32_t l, size_t block_bytes) {
  const uint64_t start = p.list_starts[l], end = p.list_starts[l + 1];
  const uint8_t* first = p.blocks + (start / kIvfBlockRows) * block_bytes;
  const size_t bytes = std::min(kPrefetchBytes, size_t(end - start) / kIvfBlockRows * block_bytes);
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(first + off);
  // The list's slots too: candidates read them (13% of a search stalled there, by perf).
  const uint8_t* slots = reinterpret_cast<const uint8_t*>(p.row_slots + start);
  const size_t slot_bytes = std::min(kPrefetchBytes / 4, size_t(end - start) * sizeof(int32_t));
  for (size_t off = 0; off < slot_bytes; off += 64) __builtin_prefetch(slots + off);
}

// Table sums of one list (n rows) for one query -> candidates of its heap.
inline void collect(const IvfPartition& p, const IvfRows& rows, bool l2, uint32_t l,
                    const int32_t* slots, const uint32_t* sums, size_t n, float base,
                    float inv_scale, Reservoir& heap) {
  const float scale = 1.f / inv_scale;
  // The smallest estimate a row of the list can have beyond its table sum (l2: the list's
  // smallest norm), so one integer bound skips every row that cannot enter.
  const float floor_extra = l2 ? p.list_min_sq_norms[l] : 0.f;
  float bound = heap.bound;
  uint32_t limit = sum_limit(bound, base + floor_extra, scale);
  // 64 rows' compares at a time, then their passing rows in order; the limit only drops, so a
  // row of an older mask is checked again.
  for (size_t r0 = 0; r0 < n; r0 += 64) {
    for (uint64_t m = below_mask(sums + r0, std::min<size_t>(64, n - r0), limit); m;
         m &= m - 1) {
      const size_t r = r0 + size_t(__builtin_ctzll(m));
      if (sums[r] >= limit) continue;
      const int32_t slot = slots[r];
      if (!admissible(rows, slot)) continue;
      const float est = base + float(sums[r]) * inv_scale + (l2 ? p.sq_norms[slot] : 0.f);
      if (est < bound) {
        heap.push(est, uint32_t(slot));
        if (heap.bound != bound) {
          bound = heap.bound;
          limit = sum_limit(bound, base + floor_extra, scale);
        }
      }
    }
  }
}

// The query's nearest list, scanned first with no bound yet: pushing all its rows trimmed the
// pool every `pool` rows (glove-50 390k, nprobe 48, re-rank 40: 6 trims and ~390 admitted rows
// per query, nearly all of them here; 14% of the search went to trimming). For ip an estimate
// grows with the table sum, so a histogram of the admissible rows' sums gives a bound that at
// least `pool` rows beat, and only those are collected. l2 adds each row's norm to it: there
// the rows go through collect() as before.
inline void collect_nearest(const IvfPartition& p, const IvfRows& rows, bool l2, uint32_t l,
                            const int32_t* slots, const uint32_t* sums, size_t n, float base,
                            float inv_scale, unsigned hist_shift, std::vector<uint32_t>& hist,
                            Reservoir& heap) {
  if (l2) {
    collect(p, rows, true, l, slots, sums, n, base, inv_scale, heap);
    return;
  }
  std::fill(hist.begin(), hist.end(), 0u);
  size_t admitted = 0;
  for (size_t r = 0; r < n; ++r) {
    if (!admissible(rows, slots[r])) continue;
    ++hist[sums[r] >> hist_shift];
    ++admitted;
  }
  if (admitted > heap.pool) {
    // The first bin whose rows make the count reach the pool: rows below its upper edge number
    // at least `pool`, so no row at or past the edge can be among the final candidates. The
    // bound sits half a sum below the edge, where no estimate can be.
    size_t bin = 0;
    for (size_t seen = 0; (seen += hist[bin]) < heap.pool;) ++bin;
    heap.bound = base + (float((bin + 1) << hist_shift) - 0.5f) * inv_scale;
  }
  collect(p, rows, false, 0, slots, sums, n, base, inv_scale, heap);
}

struct Context {
  const IvfPartition& p;
  const IvfRows& rows;
  const IvfParams& prm;
  const float* queries;
  std::vector<float> centroid_sq;  // l2 only
  size_t npos, block_bytes, n_tiles, stride, group;
  DistTilesFn tiles_fn;
  unsigned hist_shift = 0;  // table sum >> hist_shift: its bin in collect_nearest
};

// Queries [q0, q1) of the batch, list-major.
void search_chunk(const Context& c, size_t q0, size_t q1, Scratch& s, int64_t* out_slots,
                  float* out_dists) {
  const IvfPartition& p = c.p;
  const IvfParams& prm = c.prm;
  const bool l2 = prm.metric == Metric::kL2;
  const size_t nq = q1 - q0, nprobe = std::min(prm.nprobe, p.nlist);
  const size_t lut_bytes = c.npos * kCodebookSize;
  const size_t pool = std::max(prm.rerank, prm.k);

  // 1. Coarse distances, nearest lists and tables of every query of the chunk.
  s.probes.clear();
  const float* group_queries[8];
  for (size_t g = 0; g < nq; g += c.group) {
    const size_t m = std::min(c.group, nq - g);
    for (size_t j = 0; j < m; ++j) group_queries[j] = c.queries + (q0 + g + j) * p.dim;
    c.tiles_fn(group_queries, m, p.centroid_tiles, c.n_tiles, p.dim, s.coarse.data(), c.stride,
               s.tile_min.data());
    for (size_t j = 0; j < m; ++j) {
      const size_t qi = g + j;
      const float* coarse = s.coarse.data() + j * c.stride;
      const std::vector<Scored>& lists = nearest_lists(coarse, p.nlist, nprobe, s);
      // The nearest list is scanned right after the table is built: its first blocks and
      // slots are on their way meanwhile.
      if (!lists.empty()) prefetch_list(p, lists[0].id, c.block_bytes);
      const float offset = build_table(p, group_queries[j], l2 ? 2.f : 1.f, s,
                                       s.luts.data() + qi * lut_bytes, c.npos, &s.inv_scale[qi]);
      s.cands[qi].reset(pool);
      bool nearest = true;
      for (const Scored& near : lists) {
        // ip: -<q, c>; l2: |q - c|^2 - |c|^2 = |q|^2 - 2 <q, c>.
        const float base = (l2 ? near.dist - c.centroid_sq[near.id] : near.dist) + offset;
        if (nearest) {
          // The query's nearest list now, alone: its best rows set the candidates' bound
          // before the shared list-major pass, whose lists come in no order of this query's
          // (without it, 15% of the search went to trimming candidates a tight bound skips).
          nearest = false;
          const uint64_t start = p.list_starts[near.id];
          const size_t n = size_t(p.list_starts[near.id + 1] - start);
          const uint8_t* lut = s.luts.data() + qi * lut_bytes;
          fastscan_lut_scan(p.blocks + (start / kIvfBlockRows) * c.block_bytes, n, c.npos, &lut,
                            1, kIvfTableTop, s.sums.data(), n);
          collect_nearest(p, c.rows, l2, near.id, p.row_slots + start, s.sums.data(), n,
                          base, s.inv_scale[qi], c.hist_shift, s.hist, s.cands[qi]);
          continue;
        }
        s.probes.push_back({near.id, uint32_t(qi), base});
      }
    }
  }

  // 2. Probes grouped by list (counting sort: lists ascending, queries ascending within).
  std::fill(s.list_first.begin(), s.list_first.end(), 0u);
  for (const Probe& pr : s.probes) ++s.list_first[pr.list + 1];
  for (size_t l = 0; l < p.nlist; ++l) s.list_first[l + 1] += s.list_first[l];
  s.by_list.resize(s.probes.size());
  s.cursor.assign(s.list_first.begin(), s.list_first.end() - 1);
  for (const Probe& pr : s.probes) s.by_list[s.cursor[pr.list]++] = pr;

  // 3. Each probed list once, for up to kScanGroup of its queries per kernel call.
  const uint8_t* luts[kScanGroup];
  for (size_t i = 0; i < s.by_list.size();) {
    const uint32_t l = s.by_list[i].list;
    const size_t end_i = s.list_first[l + 1];
    const uint64_t start = p.list_starts[l];
    const size_t n = size_t(p.list_starts[l + 1] - start);
    if (end_i < s.by_list.size()) prefetch_list(p, s.by_list[end_i].list, c.block_bytes);
    const uint8_t* blocks = p.blocks + (start / kIvfBlockRows) * c.block_bytes;
    const int32_t* slots = p.row_slots + start;
    for (; i < end_i; i += kScanGroup) {
      const size_t g = std::min(kScanGroup, end_i - i);
      if (n == 0) continue;
      for (size_t j = 0; j < g; ++j) luts[j] = s.luts.data() + s.by_list[i + j].query * lut_bytes;
      fastscan_lut_scan(blocks, n, c.npos, luts, g, kIvfTableTop, s.sums.data(), n);
      for (size_t j = 0; j < g; ++j) {
        const Probe& pr = s.by_list[i + j];
        collect(p, c.rows, l2, l, slots, s.sums.data() + j * n, n, pr.base,
                s.inv_scale[pr.query], s.cands[pr.query]);
      }
    }
    i = end_i;
  }

  // 4. Exact re-rank of each query's candidates. The rows are scattered over the store: the
  // next query's are requested while this one's are scored (a row miss each otherwise).
  const DistanceKernels& kern = kernels_for(StorageKind::kFloat32, prm.metric);
  const size_t row_bytes = p.dim * sizeof(float);
  const uint8_t* vectors = reinterpret_cast<const uint8_t*>(c.rows.vectors);
  auto prefetch_rows = [&](size_t qi) {
    for (const Scored& it : s.cands[qi].best())
      for (size_t off = 0; off < row_bytes; off += 64)
        __builtin_prefetch(vectors + size_t(it.id) * row_bytes + off);
  };
  prefetch_rows(0);
  for (size_t qi = 0; qi < nq; ++qi) {
    if (qi + 1 < nq) prefetch_rows(qi + 1);
    const float* q = c.queries + (q0 + qi) * p.dim;
    const std::vector<Scored>& found = s.cands[qi].best();
    const size_t nc = found.size();
    for (size_t i = 0; i < nc; ++i) s.cand[i] = found[i].id;
    kern.gather(q, vectors, row_bytes, p.dim, s.cand.data(), nc, s.exact.data());
    TopK& top_k = s.results;
    top_k.reset(prm.k);
    for (size_t i = 0; i < nc; ++i) top_k.push(s.exact[i], s.cand[i]);
    const std::vector<Scored>& top = top_k.sorted();
    int64_t* os = out_slots + (q0 + qi) * prm.k;
    float* od = out_dists + (q0 + qi) * prm.k;
    for (size_t i = 0; i < prm.k; ++i) {
      os[i] = i < top.size() ? int64_t(top[i].id) : -1;
      od[i] = i < top.size() ? top[i].dist : std::numeric_limits<float>::infinity();
    }
  }
}

}  // namespace

void ivf_search(const IvfPartition& part, const IvfRows& rows, const float* queries, size_t nq,
                const IvfParams& params, size_t threads, int64_t* out_slots,
                float* out_dists) {
  if (nq == 0) return;
  if (params.k < 1) throw ValueError("k must be >= 1");
  if (params.metric != Metric::kL2 && params.metric != Metric::kInnerProduct)
    throw ValueError("IVF search supports the l2 and ip metrics");
  if (part.nlist < 1 || part.subspaces < 1 || part.subspace_dim < 1)
    throw ValueError("IVF partition is empty (train it first)");
  if (params.metric == Metric::kL2 &&
      (part.sq_norms == nullptr || part.list_min_sq_norms == nullptr))
    throw ValueError("IVF l2 search needs the rows' squared norms");
  const KernelTable& kernels = active_kernels();
  Context c{part, rows, params, queries, {}, ivf_positions(part.subspaces), 0, 0, 0,
            kernels.tile_queries, kernels.tiles[int(params.metric)]};
  c.block_bytes = 16 * c.npos;
  c.n_tiles = (part.nlist + kTileRows - 1) / kTileRows;
  c.stride = c.n_tiles * kTileRows;
  if (params.metric == Metric::kL2) {
    c.centroid_sq.assign(part.nlist, 0.f);
    for (size_t l = 0; l < part.nlist; ++l) {
      const float* v = part.centroids + l * part.dim;
      float sum = 0.f;
      for (size_t d = 0; d < part.dim; ++d) sum += v[d] * v[d];
      c.centroid_sq[l] = sum;
    }
  }
  size_t longest = 0;
  for (size_t l = 0; l < part.nlist; ++l)
    longest = std::max<size_t>(longest, size_t(part.list_starts[l + 1] - part.list_starts[l]));
  // Bins of the nearest list's table sums: at most kHistBins (a sum is at most top x npos).
  const size_t max_sum = size_t(kIvfTableTop) * c.npos;
  while ((max_sum >> c.hist_shift) >= kHistBins) ++c.hist_shift;
  threads = std::max<size_t>(1, std::min(threads, nq));
  // Chunks: at most kChunkQueries queries, and at least one chunk per thread.
  const size_t chunk = std::clamp<size_t>((nq + threads - 1) / threads, 1, kChunkQueries);
  const size_t n_chunks = (nq + chunk - 1) / chunk;
  const size_t pool = std::max(params.rerank, params.k);
  const size_t nprobe = std::min(params.nprobe, part.nlist);
  std::vector<Scratch> scratch(std::min(threads, n_chunks));
  for (Scratch& s : scratch) {
    s.coarse.resize(c.group * c.stride);
    s.tile_min.resize(c.group * c.n_tiles);
    s.table.resize(part.subspaces * kCodebookSize);
    s.luts.resize(chunk * c.npos * kCodebookSize);
    s.inv_scale.resize(chunk);
    s.cands.resize(chunk);
    s.probes.reserve(chunk * nprobe);
    s.list_first.resize(part.nlist + 1);
    s.sums.resize(kScanGroup * longest);
    s.hist.resize((max_sum >> c.hist_shift) + 1);
    s.cand.resize(2 * pool);
    s.exact.resize(2 * pool);
  }
  parallel_for(n_chunks, scratch.size(), 1, [&](size_t ch, size_t tid) {
    const size_t q0 = ch * chunk;
    search_chunk(c, q0, std::min(nq, q0 + chunk), scratch[tid], out_slots, out_dists);
  });
}

}  // namespace bitgraph
