// HNSW construction: slot assignment, parallel insertion, neighbour selection, back-links.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "hnsw/hnsw_index.hpp"
#include "hnsw/scratch.hpp"

namespace bitgraph {

namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

template <class Store>
HnswIndexT<Store>::~HnswIndexT() = default;

template <class Store>
HnswIndexT<Store>::HnswIndexT(const HnswParams& params)
    : params_(params),
      store_(params.store_spec()),
      graph_(params.M),
      rng_state_(params.seed),
      level_mult_(1.0 / std::log(double(params.M))),
      stripes_(new std::mutex[kStripes]) {
  if (params.dim < 1) throw ValueError("dim must be >= 1");
  if (params.M < 2 || params.M > kMaxM) throw ValueError("M must be in 2..512");
  if (params.ef_construction < 1) throw ValueError("ef_construction must be >= 1");
}

template <class Store>
void HnswIndexT<Store>::make_owned() {
  store_.make_owned();
  graph_.make_owned();
  make_slots_owned();
}

template <class Store>
size_t HnswIndexT<Store>::add(const Query* vectors, const int64_t* labels, size_t n, size_t threads,
                      const ProgressFn& progress) {
  std::lock_guard<std::mutex> writer(write_mu_);
  if (n == 0) return 0;
  const size_t first = n_slots_;
  check_capacity(first + n);

  std::vector<int32_t> levels(n);
  for (size_t i = 0; i < n; ++i) {
    double u = double((splitmix64(rng_state_) >> 11) + 1) * (1.0 / 9007199254740992.0);
    levels[i] = int32_t(-std::log(u) * level_mult_);
  }
  std::vector<int64_t> replaced(n, -1);
  {
    std::unique_lock<std::shared_mutex> exclusive(buffers_mu_);
    make_owned();
    store_.resize(first + n);
    graph_.append(levels.data(), n);
    append_labels(labels, n, replaced.data());
    n_slots_ = first + n;
  }

  std::vector<Scratch> scratch(std::max<size_t>(threads, 1));
  for (auto& s : scratch) s.visited = visited_pool_.acquire(n_slots_);
  std::vector<uint8_t> finished(n, 0);
  auto release_scratch = [&] {
    for (auto& s : scratch) visited_pool_.release(std::move(s.visited));
  };
  try {
    parallel_for(
        n, threads, 1,
        [&](size_t i, size_t tid) {
          uint32_t slot = uint32_t(first + i);
          store_.set(slot, vectors + i * store_.add_width());
          insert(slot, scratch[tid]);
          finished[i] = 1;
        },
        progress);
    // The heuristic prunes links, and now and then a node loses its last in-link from the
    // part of the graph the entry point reaches: no search could return it. A repair costs a
    // pass over the links (~n * M0 reads), so it runs once the graph grew by 1/32 since the
    // last one (small adds into a big index stay cheap; search falls back to an exact scan
    // when a walk comes back short, so nothing is lost in between).
    inserted_since_repair_ += n;
    if (inserted_since_repair_ * 32 >= n_slots_) {
      repair_reachability(scratch[0]);
      inserted_since_repair_ = 0;
    }
  } catch (...) {
    // Items never started are unreachable: tombstone them and restore what they replaced, so
    // an interrupted add leaves exactly the finished items added.
    for (size_t i = 0; i < n; ++i)
      if (!finished[i]) undo_append(first, i, labels, replaced.data());
    release_scratch();
    throw;
  }
  release_scratch();
  return n;
}

template <class Store>
void HnswIndexT<Store>::insert(uint32_t slot, Scratch& s) {
  const int level = graph_.level(slot);
  std::unique_lock<std::mutex> top(entry_mu_);
  if (level <= max_level_.load()) top.unlock();
  const int64_t ep = entry_point_.load();
  if (ep < 0) {
    entry_point_ = slot;
    max_level_ = level;
    return;
  }
  const int ep_level = graph_.level(uint32_t(ep));
  const Query* q = store_.as_query(slot, s.query_buf);
  uint32_t cur = greedy_descend(q, uint32_t(ep), ep_level, level);

  const int top_lc = std::min(level, ep_level);
  if (s.chosen.size() < size_t(top_lc + 1)) s.chosen.resize(size_t(top_lc + 1));
  // A pool larger than the index finds nothing more: ef_construction = 10^9 must not
  // allocate gigabytes per thread.
  const size_t ef = std::min(params_.ef_construction, n_slots_);
  for (int lc = top_lc; lc >= 0; --lc) {
    search_layer(q, cur, ef, lc, s);
    s.candidates.clear();
    for (size_t i = 0; i < s.pool.size(); ++i)
      s.candidates.push_back({s.pool.dist_at(i), s.pool.id_at(i)});
    cur = s.candidates.front().id;
    select_neighbors(s.candidates, graph_.own_links(lc), s);
    {
      std::lock_guard<std::mutex> g(stripe(slot));
      int32_t* own = graph_.links(slot, lc);
      for (size_t j = 0; j < s.candidates.size(); ++j) own[1 + j] = int32_t(s.candidates[j].id);
      own[0] = int32_t(s.candidates.size());
    }
    s.chosen[size_t(lc)] = s.candidates;
  }
  // Back-links only once the new node has its own links on every level: until then nothing
  // leads to it, so a concurrent search never walks into a node whose lower levels are still
  // empty (it would stop there with a single result). A sequential build is unchanged: the
  // walk on a lower level never uses the links of the levels above.
  for (int lc = top_lc; lc >= 0; --lc)
    for (const Scored& c : s.chosen[size_t(lc)]) link_back(c.id, slot, c.dist, lc, s);
  if (level > ep_level) {
    entry_point_ = slot;
    max_level_ = level;
  }
}

template <class Store>
uint32_t HnswIndexT<Store>::greedy_descend(const Query* q, uint32_t start, int from_level,
                                   int to_level, uint32_t* path) const {
  uint32_t cur = start;
  float cur_dist = store_.distance(q, cur);
  uint32_t ids[kMaxM];  // on the stack: a descent per query must not allocate
  float dists[kMaxM];
  for (int lc = from_level; lc > to_level; --lc) {
    bool changed = true;
    while (changed) {
      changed = false;
      const int32_t* ll = graph_.links(cur, lc);
      size_t cnt = std::min<size_t>(size_t(ll[0]), graph_.M());
      for (size_t j = 0; j < cnt; ++j) ids[j] = uint32_t(ll[1 + j]);
      store_.distances(q, ids, cnt, dists);
      for (size_t j = 0; j < cnt; ++j) {
        if (dists[j] < cur_dist) {
          cur_dist = dists[j];
          cur = ids[j];
          changed = true;
        }
      }
    }
    if (path) path[from_level - lc] = cur;
  }
  return cur;
}

template <class Store>
void HnswIndexT<Store>::search_layer(const Query* q, uint32_t entry, size_t ef, int level,
                             Scratch& s) const {
  VisitedSet& visited = *s.visited;
  visited.prepare(n_slots_);
  s.pool.reset(ef);
  const size_t max_links = graph_.max_links(level);
  if (s.ids.size() < max_links) {
    s.ids.resize(max_links);
    s.dists.resize(max_links);
  }
  visited.test_and_set(entry);
  s.pool.insert(entry, store_.distance(q, entry));
  while (s.pool.has_next()) {
    uint32_t u = s.pool.pop();
    uint32_t next;
    if (s.pool.peek(&next)) __builtin_prefetch(graph_.links(next, level), 0, 3);
    const int32_t* ll = graph_.links(u, level);
    size_t cnt = std::min<size_t>(size_t(ll[0]), max_links);
    size_t m = 0;
    for (size_t j = 0; j < cnt; ++j) {
      uint32_t v = uint32_t(ll[1 + j]);
      if (!visited.test_and_set(v)) s.ids[m++] = v;
    }
    if (m == 0) continue;
    store_.distances(q, s.ids.data(), m, s.dists.data());
    for (size_t j = 0; j < m; ++j) s.pool.insert(s.ids[j], s.dists[j]);
  }
}

template <class Store>
void HnswIndexT<Store>::select_neighbors(std::vector<Scored>& candidates, size_t m, Scratch& s) const {
  // hnswlib's heuristic: keep a candidate only if it is closer to the base than to every
  // neighbour kept so far, which spreads links over directions and keeps the graph navigable.
  if (candidates.size() <= m) return;
  s.selected.clear();
  for (const Scored& c : candidates) {
    if (s.selected.size() >= m) break;
    const Query* cv = store_.as_query(c.id, s.cand_buf);
    bool keep = true;
    for (const Scored& r : s.selected) {
      if (store_.distance(cv, r.id) < c.dist) {
        keep = false;
        break;
      }
    }
    if (keep) s.selected.push_back(c);
  }
  candidates.swap(s.selected);
}

template <class Store>
void HnswIndexT<Store>::link_back(uint32_t owner, uint32_t node, float dist, int level, Scratch& s) {
  std::lock_guard<std::mutex> g(stripe(owner));
  int32_t* ll = graph_.links(owner, level);
  const size_t cap = graph_.max_links(level);
  size_t cnt = size_t(ll[0]);
  for (size_t j = 0; j < cnt; ++j)
    if (uint32_t(ll[1 + j]) == node) return;
  if (cnt < cap) {
    ll[1 + cnt] = int32_t(node);  // id first, then the count that publishes it
    ll[0] = int32_t(cnt + 1);
    return;
  }
  // Full: re-select among the old neighbours plus the new node, seen from the owner.
  const Query* ov = store_.as_query(owner, s.owner_buf);
  s.relink.clear();
  s.relink.push_back({dist, node});
  for (size_t j = 0; j < cnt; ++j) s.ids[j] = uint32_t(ll[1 + j]);
  store_.distances(ov, s.ids.data(), cnt, s.dists.data());
  for (size_t j = 0; j < cnt; ++j) s.relink.push_back({s.dists[j], s.ids[j]});
  std::sort(s.relink.begin(), s.relink.end(), Closer{});
  select_neighbors(s.relink, cap, s);
  for (size_t j = 0; j < s.relink.size(); ++j) ll[1 + j] = int32_t(s.relink[j].id);
  ll[0] = int32_t(s.relink.size());
}

template class HnswIndexT<RowStore>;
template class HnswIndexT<CodeStore>;

}  // namespace bitgraph
