// The restricted level-0 walk (private to hnsw/): used by search.cpp (tombstones, a bitset)
// and filtered_search.cpp (the post-filter plan with a budget).
#pragma once
#include <algorithm>
#include <queue>
#include <vector>

#include "hnsw/hnsw_index.hpp"
#include "hnsw/scratch.hpp"

namespace bitgraph {

struct FartherFirst {
  bool operator()(const Scored& a, const Scored& b) const { return a.dist > b.dist; }
};

template <class Store>
template <class Admissible>
bool HnswIndexT<Store>::restricted_walk(const Query* q, uint32_t entry, const Admissible& ok,
                                size_t budget, Scratch& s, TopK& results,
                                int64_t* scored) const {
  VisitedSet& visited = *s.visited;
  visited.prepare(n_slots_);
  const size_t max_links = graph_.M0();
  if (s.ids.size() < max_links) {
    s.ids.resize(max_links);
    s.dists.resize(max_links);
  }
  std::priority_queue<Scored, std::vector<Scored>, FartherFirst> frontier;
  const float d0 = store_.distance(q, entry);
  size_t work = 1;
  visited.test_and_set(entry);
  frontier.push({d0, entry});
  if (ok(entry)) results.push(d0, entry);
  bool finished = true;
  while (!frontier.empty()) {
    const Scored c = frontier.top();
    if (results.full() && c.dist > results.worst()) break;
    if (work > budget) {
      finished = false;
      break;
    }
    frontier.pop();
    const int32_t* ll = graph_.links(c.id, 0);
    const size_t cnt = std::min<size_t>(size_t(ll[0]), max_links);
    size_t m = 0;
    for (size_t j = 0; j < cnt; ++j) {
      const uint32_t v = uint32_t(ll[1 + j]);
      if (!visited.test_and_set(v)) s.ids[m++] = v;
    }
    if (m == 0) continue;
    store_.distances(q, s.ids.data(), m, s.dists.data());
    work += m;
    for (size_t j = 0; j < m; ++j) {
      const float d = s.dists[j];
      if (!results.full() || d < results.worst()) {
        frontier.push({d, s.ids[j]});
        if (ok(s.ids[j])) results.push(d, s.ids[j]);
      }
    }
  }
  if (scored) *scored += int64_t(work);
  return finished;
}

}  // namespace bitgraph
