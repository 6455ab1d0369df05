// Thin glue for the binary-code functions: encode (recurrent binarization) and float re-rank.
#include "binary/encode.hpp"
#include "binary/rerank.hpp"
#include "bindings/common.hpp"

namespace bitgraph::bindings {
namespace {

// A float32 C-contiguous array used in place: never converted, because the re-rank vectors
// may be a memory map far larger than RAM and a silent conversion would copy all of it.
py::array float_matrix_in_place(const py::object& obj, const char* what) {
  py::array a = py::array::ensure(obj);
  require(a && a.ndim() == 2 && a.dtype().is(py::dtype::of<float>()) &&
              (a.flags() & py::array::c_style),
          std::string(what) + " must be a C-contiguous 2-d float32 array");
  return a;
}

py::array_t<uint8_t> encode(const py::object& x, bool normalize, const py::object& mean,
                            const py::object& proj, const py::object& phi,
                            const py::object& phi_bias, const py::object& psi,
                            const py::object& psi_scale, const py::object& psi_bias,
                            size_t threads) {
  auto xs = CArray<float>::ensure(x);
  require(xs && xs.ndim() == 2, "x must be a 2-d float32 array");
  auto mean_a = as_vector<float>(mean, "mean");
  auto proj_a = CArray<float>::ensure(proj);
  auto phi_a = CArray<float>::ensure(phi);
  auto phib = CArray<float>::ensure(phi_bias);
  auto psi_a = CArray<float>::ensure(psi);
  auto psis = as_vector<float>(psi_scale, "psi_scale");
  auto psib = CArray<float>::ensure(psi_bias);
  require(proj_a && proj_a.ndim() == 2 && phi_a && phi_a.ndim() == 3 && phib &&
              phib.ndim() == 2 && psi_a && psi_a.ndim() == 3 && psib && psib.ndim() == 2,
          "binary_encode: model arrays have the wrong number of dimensions");
  EncodeModel M;
  M.dim = xs.shape(1);
  M.rdim = proj_a.shape(1);
  M.planes = phib.shape(0);
  M.code_dim = phib.shape(1);
  M.normalize = normalize;
  require(M.planes >= 1 && M.planes <= 8 && M.code_dim >= 1, "binary_encode: bad code shape");
  require(size_t(mean_a.shape(0)) == M.dim && size_t(proj_a.shape(0)) == M.dim,
          "binary_encode: mean/proj do not match the input dimension");
  const bool has_phi = phi_a.size() > 0, has_psi = psi_a.size() > 0;
  require(!has_phi || (size_t(phi_a.shape(0)) == M.planes && size_t(phi_a.shape(1)) == M.rdim &&
                       size_t(phi_a.shape(2)) == M.code_dim),
          "binary_encode: phi must be (planes, r, m)");
  require(!has_psi || (size_t(psi_a.shape(0)) == M.planes &&
                       size_t(psi_a.shape(1)) == M.code_dim && size_t(psi_a.shape(2)) == M.rdim),
          "binary_encode: psi must be (planes, m, r)");
  require(size_t(psis.shape(0)) == M.planes && size_t(psib.shape(0)) == M.planes &&
              size_t(psib.shape(1)) == M.rdim,
          "binary_encode: psi_scale/psi_bias have the wrong shape");
  M.mean = mean_a.data();
  M.proj = proj_a.data();
  M.phi = has_phi ? phi_a.data() : nullptr;
  M.phi_bias = phib.data();
  M.psi = has_psi ? psi_a.data() : nullptr;
  M.psi_scale = psis.data();
  M.psi_bias = psib.data();
  const size_t n = xs.shape(0);
  py::array_t<uint8_t> out({py::ssize_t(n), py::ssize_t(M.code_bytes())});
  {
    py::gil_scoped_release nogil;
    binary_encode(M, xs.data(), n, threads, out.mutable_data());
  }
  return out;
}

py::tuple rerank_candidates(const py::object& queries, const py::object& vectors,
                            const py::object& slots, const py::object& labels, size_t k,
                            const std::string& metric, size_t threads) {
  py::array vec = float_matrix_in_place(vectors, "vectors");
  const size_t dim = vec.shape(1);
  auto q = as_matrix<float>(queries, dim, "queries");
  const size_t nq = q.shape(0);
  auto s = CArray<int64_t>::ensure(slots);
  auto l = CArray<int64_t>::ensure(labels);
  require(s && l && s.ndim() == 2 && l.ndim() == 2 && size_t(s.shape(0)) == nq &&
              s.shape(0) == l.shape(0) && s.shape(1) == l.shape(1),
          "slots and labels must be (nq, candidates) int64 arrays");
  require(k >= 1, "k must be >= 1");
  const size_t n_cand = s.shape(1);
  py::array_t<int64_t> out_l({py::ssize_t(nq), py::ssize_t(k)});
  py::array_t<float> out_d({py::ssize_t(nq), py::ssize_t(k)});
  const Metric met = parse_metric(metric);
  const float* base = static_cast<const float*>(vec.data());
  const size_t n_vectors = vec.shape(0);
  {
    py::gil_scoped_release nogil;
    rerank(q.data(), nq, dim, met, base, n_vectors, s.data(), l.data(), n_cand, k, threads,
           out_l.mutable_data(), out_d.mutable_data());
  }
  return py::make_tuple(out_l, out_d);
}

}  // namespace

void bind_binary(py::module_& m) {
  m.def("binary_encode", &encode, py::arg("x"), py::arg("normalize"), py::arg("mean"),
        py::arg("proj"), py::arg("phi"), py::arg("phi_bias"), py::arg("psi"),
        py::arg("psi_scale"), py::arg("psi_bias"), py::arg("threads") = 1,
        "Recurrent binarization of float32 rows into packed code rows (see the contract).");
  m.def("rerank", &rerank_candidates, py::arg("queries"), py::arg("vectors"), py::arg("slots"),
        py::arg("labels"), py::arg("k"), py::arg("metric"), py::arg("threads") = 1,
        "The k closest of each query's candidate slots by exact float32 distance.");
}

}  // namespace bitgraph::bindings
