#include "mmphate/phate.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include "engine/diffusion/diffusion.hpp"
#include "mmphate/error.hpp"
#include "engine/graph/kernel.hpp"
#include "engine/graph/knn.hpp"
#include "engine/diffusion/landmarks.hpp"
#include "engine/embed/mds.hpp"
#include "engine/graph/multislice.hpp"
#include "data/normalize.hpp"
#include "util/parallel.hpp"
#include "engine/diffusion/potential.hpp"
#include "engine/graph/distances.hpp"
#include "engine/diffusion/spectral.hpp"
#include "mmphate/trace.hpp"
#include "engine/diffusion/von_neumann.hpp"

namespace mmphate {
namespace {

// Dense work of the diffusion stages keeps about four n x n double matrices alive.
void require_dense_fits(Index n) {
  const double bytes = 4.0 * 8.0 * static_cast<double>(n) * static_cast<double>(n);
  if (bytes > 16e9)
    throw Error("the diffusion operator would be a dense " + std::to_string(n) + " x " +
                std::to_string(n) + " matrix (~" + std::to_string(static_cast<long long>(bytes / 1e9)) +
                " GB of work space): set n_landmark to at most a few thousand");
}

// P_L^t = w^-1/2 V diag(lambda^t) V^T w^1/2 from the symmetric conjugate's eigenpairs (all of
// them, or the dominant ones: the GEMM is n x n x pairs).
Matrix landmark_power(const Landmarks& lm, const EigenPairs& eig, int t) {
  const Vector sq = lm.weight.cwiseSqrt();
  const Vector lt = eig.values.array().pow(static_cast<double>(t)).matrix();
  const Matrix left = sq.cwiseInverse().asDiagonal() * eig.vectors * lt.asDiagonal();
  const Matrix right = eig.vectors.transpose() * sq.asDiagonal();
  Matrix out;
  out.noalias() = left * right;
  return out;
}

}  // namespace

RowMatrix pca(const RowMatrix& data, int n_components) {
  RowMatrix X = data;
  const Eigen::RowVectorXd mean = X.colwise().mean();
  X.rowwise() -= mean;
  const Matrix cov = X.transpose() * X;
  const EigenPairs ep = top_eigenpairs_dense(cov, n_components);
  return X * ep.vectors;
}

SparseMatrix phate_kernel(const RowMatrix& data, const Options& opt, KnnMethod* used) {
  // Magnitudes whose squares overflow (|x| >= ~1e154) would turn distances and the PCA's
  // covariance into Inf/NaN: rescale by a power of two first (exact; the alpha-decay kernel
  // does not depend on a global scale).
  if (const double s = distance_safe_scale(data); s != 1.0) {
    logger()->warn("input values up to {:.3g} in magnitude would overflow squared distances; data scaled by 2^{} "
                   "(exact; the kernel does not depend on the scale)", 1.0 / s, std::ilogb(s));
    return phate_kernel(data * s, opt, used);
  }
  RowMatrix X;
  const RowMatrix* src = &data;
  if (opt.n_pca > 0 && data.cols() > opt.n_pca) {
    X = pca(data, opt.n_pca);
    src = &X;
  }
  KernelInfo info;
  SparseMatrix K = alpha_decay_kernel(*src, opt.knn, opt.decay, opt.thresh, opt.knn_method,
                                      opt.threads, &info);
  if (used) *used = info.knn_method;
  return K;
}

EmbedResult embed_kernel(const SparseMatrix& K, const Options& opt) { return embed_kernel(K, opt, EmbedHints{}); }

EmbedResult embed_kernel(const SparseMatrix& K, const Options& opt, const EmbedHints& hints) {
  opt.validate();
  const EngineThreads engine_threads(opt.threads);
  EmbedResult res;
  const Index n = K.rows();
  res.n_nodes = n;
  res.kernel_nnz = K.nonZeros();
  if (n <= opt.n_components + 1)
    throw Error("embedding needs more than " + std::to_string(opt.n_components + 1) + " nodes, got " +
                std::to_string(n));

  // Diffusion operator: the full P, or the landmark operator P_L.
  Matrix M;
  Landmarks lm;
  res.landmarks_used = opt.n_landmark > 0 && n > opt.n_landmark;
  {
    ScopedStage st(res.times, res.landmarks_used ? "landmarks" : "diffusion_operator");
    if (res.landmarks_used && hints.landmark_of) {
      if (static_cast<Index>(hints.landmark_of->size()) != n || hints.landmark_count < 1)
        throw Error("embed_kernel: the given landmark assignment has " + std::to_string(hints.landmark_of->size()) +
                    " entries for " + std::to_string(n) + " nodes");
      ScopedStage sub(res.times, "landmarks.operators");
      lm = landmark_operators(K, *hints.landmark_of, hints.landmark_count, opt.threads);
      res.n_landmarks = lm.count;
    } else if (res.landmarks_used) {
      lm = build_landmarks(K, opt.n_landmark, opt.n_svd, opt.seed, opt.threads, &res.times,
                           opt.svd_power_iterations);
      res.n_landmarks = lm.count;
    } else {
      require_dense_fits(n);
      M = Matrix(diffusion_operator(K));
    }
  }
  require_dense_fits(res.landmarks_used ? lm.count : n);

  // With landmarks, P_L is a reversible chain: one eigendecomposition of its symmetric
  // conjugate gives both the spectrum for the automatic t and P_L^t. With t given and a
  // power floor, only the eigenpairs that matter for P_L^t are computed.
  EigenPairs landmark_eigen;
  if (res.landmarks_used) {
    ScopedStage st(res.times, "landmark_spectrum");
    if (hints.t > 0 && hints.power_floor > 0)
      landmark_eigen = lm.dominant_eigen(std::pow(hints.power_floor, 1.0 / hints.t));
    else
      landmark_eigen = lm.symmetric_eigen();
  }

  if (hints.t > 0) {
    res.t = hints.t;
  } else if (opt.t == 0) {
    ScopedStage st(res.times, "auto_t");
    // Without landmarks: the singular values of P, exactly as the reference. With landmarks:
    // the eigenvalue magnitudes of the reversible landmark chain. P_L's singular values
    // exceed 1 when landmark sizes are uneven (measured: up to 1.94 on lstm16_12epochs), which
    // collapses the entropy curve and halves t (13 vs the reference's 26 / 31); its
    // eigenvalues stay in [-1, 1] and give t = 31 there (docs/ARCHITECTURE.md).
    Vector s;
    if (res.landmarks_used) {
      s = landmark_eigen.values.cwiseAbs();
      std::sort(s.data(), s.data() + s.size(), std::greater<double>());
    } else {
      s = singular_values(M);
    }
    res.entropy = von_neumann_entropy(s, opt.t_max);
    res.t = knee_index(res.entropy);
    res.t_automatic = true;
    if (res.t < 1) res.t = 1;
    res.t_knee = res.t;
    if (hints.t_previous > 0 && hints.t_step > 1) {
      const int lo = std::max(1, static_cast<int>(std::floor(hints.t_previous / hints.t_step)));
      const int hi = std::max(lo, static_cast<int>(std::ceil(hints.t_previous * hints.t_step)));
      res.t = std::clamp(res.t, lo, hi);
    }
    if (res.t != res.t_knee) logger()->debug("automatic t = {} (knee {}, previous {})", res.t, res.t_knee, hints.t_previous);
    else logger()->info("automatic t = {}", res.t);
  } else {
    res.t = opt.t;
  }

  if (res.landmarks_used) {
    res.slow_mode_energy = 0.0;
    std::vector<double> ev(landmark_eigen.values.data(), landmark_eigen.values.data() + landmark_eigen.values.size());
    std::sort(ev.begin(), ev.end(), std::greater<double>());
    for (std::size_t k = 1; k < ev.size(); ++k) res.slow_mode_energy += std::pow(std::abs(ev[k]), 2.0 * res.t);
    if (hints.energy_reference > 0) {
      const double ratio = res.slow_mode_energy / hints.energy_reference;
      const double limit = 1.0 + hints.energy_tolerance;
      if (!(ratio <= limit && ratio >= 1.0 / limit)) {
        res.rejected = true;
        return res;
      }
    }
  }

  Matrix D;
  {
    ScopedStage st(res.times, "potential");
    Matrix U = res.landmarks_used ? landmark_power(lm, landmark_eigen, res.t) : matrix_power(M, res.t);
    M.resize(0, 0);
    potential_transform(U, opt.gamma);
    D = row_distances(U);
  }

  RowMatrix Y;
  {
    ScopedStage st(res.times, "mds");
    const bool warm = hints.mds_init && opt.mds == MdsMethod::metric;
    if (warm) {
      if (hints.mds_init->rows() != D.rows() || hints.mds_init->cols() != opt.n_components)
        throw Error("embed_kernel: the MDS warm start is " + std::to_string(hints.mds_init->rows()) + " x " +
                    std::to_string(hints.mds_init->cols()) + ", expected " + std::to_string(D.rows()) + " x " +
                    std::to_string(opt.n_components));
      // The warm start comes from the previous (displayed) frame, whose scale is not this
      // D's (t, landmarks and the display normalisation all set it): rescale it to the
      // least-squares fit of D first, or the anchor would pull towards the wrong size.
      Y = *hints.mds_init;
      const double s = stress_optimal_scale(D, Y);
      if (s > 0) Y *= s;
    } else {
      Y = classical_mds(D, opt.n_components);
    }
    if (opt.mds == MdsMethod::metric) {
      if (opt.mds_solver == MdsSolver::smacof) {
        SmacofResult sr;
        const int cap = hints.mds_max_iter > 0 ? std::min(hints.mds_max_iter, opt.mds_max_iter) : opt.mds_max_iter;
        if (warm && hints.mds_anchor > 0) {
          const RowMatrix anchors = Y;
          double weight = hints.mds_anchor;
          Y = smacof_anchored(D, Y, anchors, weight, cap, opt.mds_tol, opt.threads, &sr);
          res.mds_iterations = sr.iterations;
          if (hints.move_of) {
            const auto nodes_of = [&](const RowMatrix& L) -> RowMatrix {
              return res.landmarks_used ? RowMatrix(lm.node_to_landmark * L) : L;
            };
            res.move = res.move_unraised = hints.move_of(nodes_of(Y));
            // Each raise must keep the neighbourhoods of the unraised layout: where holding the
            // old picture would tear them, the window really changed and the frame moves.
            // Their table is built once, and only for a frame that moved too far.
            const bool guard = hints.min_anchor_overlap > 0 && Y.rows() > 1;
            Neighbors unraised;
            if (guard && hints.max_move > 0 && res.move > hints.max_move)
              unraised = knn_search(Y, static_cast<int>(std::min<Index>(hints.anchor_overlap_k, Y.rows() - 1)),
                                    KnnMethod::automatic, opt.threads);
            for (int raise = 0; raise < hints.max_anchor_raises && hints.max_move > 0 && res.move > hints.max_move;
                 ++raise) {
              RowMatrix held = smacof_anchored(D, Y, anchors, 2.0 * weight, cap, opt.mds_tol, opt.threads, &sr);
              res.mds_iterations += sr.iterations;
              if (guard && knn_overlap(unraised, held, opt.threads) < hints.min_anchor_overlap) {
                res.move_bound_by_change = true;
                break;
              }
              weight *= 2.0;
              Y = std::move(held);
              res.move = hints.move_of(nodes_of(Y));
            }
          }
          res.mds_anchor = weight;
        } else {
          Y = smacof(D, Y, cap, opt.mds_tol, opt.threads, &sr);
          res.mds_iterations = sr.iterations;
        }
      } else {
        Y = sgd_mds(D, Y, opt.sgd_epochs, opt.sgd_eps, opt.seed + 2);
        res.mds_iterations = opt.sgd_epochs;
      }
    }
  }

  if (res.landmarks_used) {
    ScopedStage st(res.times, "extend");
    res.embedding = lm.node_to_landmark * Y;
    res.landmark_embedding = std::move(Y);
    res.landmark_of = std::move(lm.cluster);
  } else {
    res.embedding = std::move(Y);
  }
  return res;
}

EmbedResult run_phate(const RowMatrix& data, const Options& opt) {
  opt.validate();
  const EngineThreads engine_threads(opt.threads);
  if (data.rows() < 2) throw Error("PHATE needs at least 2 points, got " + std::to_string(data.rows()));
  require_finite(data, "input data");
  if (opt.knn >= data.rows())
    throw Error("invalid option knn = " + std::to_string(opt.knn) + ": must be smaller than the number of points (" +
                std::to_string(data.rows()) + ")");
  StageTimes times;
  SparseMatrix K;
  KnnMethod used = KnnMethod::exact;
  {
    ScopedStage st(times, "kernel");
    K = phate_kernel(data, opt, &used);
  }
  EmbedResult res = embed_kernel(K, opt);
  res.knn_method = used;
  res.times.insert(res.times.begin(), times.begin(), times.end());
  return res;
}

EmbedResult run_multislice(const PreparedTrace& trace, const Options& opt) {
  opt.validate();
  const EngineThreads engine_threads(opt.threads);
  StageTimes times;
  SparseMatrix K;
  MultisliceInfo info;
  {
    ScopedStage st(times, "kernel");
    K = multislice_kernel(trace.features, trace.index, opt, &info);
  }
  EmbedResult res = embed_kernel(K, opt);
  res.interslice_eps = info.interslice_eps;
  res.constant_nodes = trace.constant_nodes;
  res.dropped_nodes = trace.dropped_nodes;
  res.nonfinite_values = trace.nonfinite_values;
  res.nodes = trace.index;
  res.times.insert(res.times.begin(), times.begin(), times.end());
  return res;
}

EmbedResult run_multislice(const RowMatrix& raw, const TraceShape& shape, const Options& opt) {
  opt.validate();
  StageTimes times;
  PreparedTrace trace;
  {
    ScopedStage st(times, "normalize");
    trace = prepare_trace(raw, shape, opt);
  }
  EmbedResult res = run_multislice(trace, opt);
  res.times.insert(res.times.begin(), times.begin(), times.end());
  return res;
}

EmbedResult run_multislice(const RowMatrix& features, Index slices, Index units, const Options& opt) {
  return run_multislice(features, slice_trace_shape(features, slices, units), opt);
}

}  // namespace mmphate
