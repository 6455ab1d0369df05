// IVF search (csrc/ivf/ivf_search.hpp) as a module function. Thin glue: the Python layer
// (python/bitgraph/ivf/) owns the partition arrays; this checks shapes and dtypes (no silent
// conversion copies of the large arrays), releases the GIL and calls the kernel.
#include <string>

#include "bindings/common.hpp"
#include "ivf/ivf_search.hpp"
#include "simd/kernels.hpp"

namespace bitgraph::bindings {

namespace {

// A C-contiguous array of exactly dtype T (a large array passed with the wrong dtype would
// otherwise be converted, copied, on every search).
template <class T>
py::array_t<T> exact(const py::object& obj, const char* what) {
  require(py::isinstance<py::array>(obj), std::string(what) + " must be a numpy array");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!py::isinstance<py::array_t<T, 0>>(obj))  // the message only when it is needed
    throw ValueError(std::string(what) + " has dtype " + std::string(py::str(a.dtype())) +
                     ", expected " + std::string(py::str(py::dtype::of<T>())));
  require(a.flags() & py::array::c_style, std::string(what) + " must be C-contiguous");
  return py::reinterpret_borrow<py::array_t<T>>(obj);
}

}  // namespace

void bind_ivf(py::module_& m) {
  m.def(
      "ivf_search",
      [](const py::object& centroids, const py::object& centroid_tiles,
         const py::object& codebooks, const py::object& list_starts,
         const py::object& blocks, const py::object& row_slots, const py::object& sq_norms,
         const py::object& list_min_sq_norms, const py::object& vectors, const py::object& allowed,
         const py::object& queries, size_t k, size_t nprobe, size_t rerank,
         const std::string& metric, size_t threads) {
        auto c = exact<float>(centroids, "centroids");
        auto ct = exact<float>(centroid_tiles, "centroid_tiles");
        auto b = exact<float>(codebooks, "codebooks");
        auto ls = exact<uint64_t>(list_starts, "list_starts");
        auto bl = exact<uint8_t>(blocks, "blocks");
        auto rs = exact<int32_t>(row_slots, "row_slots");
        auto v = exact<float>(vectors, "vectors");
        auto q = exact<float>(queries, "queries");
        require(c.ndim() == 2 && c.shape(0) >= 1, "centroids must be (nlist, dim)");
        require(b.ndim() == 3 && b.shape(1) == 16, "codebooks must be (m, 16, subspace_dim)");
        IvfPartition p;
        p.nlist = size_t(c.shape(0));
        p.dim = size_t(c.shape(1));
        p.subspaces = size_t(b.shape(0));
        p.subspace_dim = size_t(b.shape(2));
        require(p.subspaces * p.subspace_dim >= p.dim && p.subspace_dim >= 1,
                "codebooks must cover every dimension");
        require(ls.ndim() == 1 && size_t(ls.shape(0)) == p.nlist + 1,
                "list_starts must hold nlist + 1 positions");
        const uint64_t* starts = ls.data();
        for (size_t l = 0; l < p.nlist; ++l)
          require(starts[l] <= starts[l + 1] && starts[l] % kIvfBlockRows == 0,
                  "list_starts must be non-decreasing multiples of 32");
        const size_t total = size_t(starts[p.nlist]);
        const size_t block_bytes = 16 * ivf_positions(p.subspaces);
        require(size_t(bl.size()) >= total / kIvfBlockRows * block_bytes,
                "blocks hold fewer rows than list_starts says");
        require(rs.ndim() == 1 && size_t(rs.shape(0)) >= total,
                "row_slots must hold one slot per packed row");
        require(v.ndim() == 2 && size_t(v.shape(1)) == p.dim, "vectors must be (n_slots, dim)");
        IvfRows r;
        r.vectors = v.data();
        r.n_slots = size_t(v.shape(0));
        // row_slots values are not scanned here (that was O(n) per call, 2 ms of a single
        // query at 390k rows): bitgraph.ivf.layout.pack_lists writes them from the slots of
        // the same rows, and IVFIndex checks max(row_slots) < n_slots when it packs.
        py::array_t<uint64_t> al;
        if (!allowed.is_none()) {
          al = exact<uint64_t>(allowed, "allowed");
          require(size_t(al.size()) * 64 >= r.n_slots, "allowed must cover every slot");
          r.allowed = al.data();
        }
        const size_t n_tiles = (p.nlist + kTileRows - 1) / kTileRows;
        require(size_t(ct.size()) == n_tiles * kTileRows * p.dim,
                "centroid_tiles must hold ceil(nlist / 16) tiles of dim x 16 values");
        p.centroid_tiles = ct.data();
        py::array_t<float> norms, list_min;
        if (!sq_norms.is_none()) {
          norms = exact<float>(sq_norms, "sq_norms");
          require(size_t(norms.size()) >= r.n_slots, "sq_norms must hold one value per slot");
          p.sq_norms = norms.data();
          list_min = exact<float>(list_min_sq_norms, "list_min_sq_norms");
          require(size_t(list_min.size()) == p.nlist,
                  "list_min_sq_norms must hold one value per list");
          p.list_min_sq_norms = list_min.data();
        }
        p.centroids = c.data();
        p.codebooks = b.data();
        p.list_starts = starts;
        p.blocks = bl.data();
        p.row_slots = rs.data();
        require(q.ndim() == 2 && size_t(q.shape(1)) == p.dim, "queries must be (nq, dim)");
        IvfParams prm;
        prm.metric = parse_metric(metric);
        prm.k = k;
        prm.nprobe = std::max<size_t>(1, nprobe);
        prm.rerank = std::max(rerank, k);
        const size_t nq = size_t(q.shape(0));
        py::array_t<int64_t> out_slots({py::ssize_t(nq), py::ssize_t(k)});
        py::array_t<float> out_dists({py::ssize_t(nq), py::ssize_t(k)});
        {
          py::gil_scoped_release nogil;
          ivf_search(p, r, q.data(), nq, prm, threads, out_slots.mutable_data(),
                     out_dists.mutable_data());
        }
        return py::make_tuple(out_slots, out_dists);
      },
      py::arg("centroids"), py::arg("centroid_tiles"), py::arg("codebooks"), py::arg("list_starts"), py::arg("blocks"),
      py::arg("row_slots"), py::arg("sq_norms"),
      py::arg("list_min_sq_norms"), py::arg("vectors"),
      py::arg("allowed"), py::arg("queries"), py::arg("k"), py::arg("nprobe"),
      py::arg("rerank"), py::arg("metric"), py::arg("threads"),
      "IVF search: (slots int64 (nq, k), distances float32 (nq, k)), -1 / inf padding.");
}

}  // namespace bitgraph::bindings
