// The PHATE engine: kernel -> diffusion operator -> (landmarks) -> automatic t ->
// potential -> MDS -> (extension to all nodes). Entry points for plain PHATE on an
// [n, d] matrix and for multislice PHATE (M-PHATE / MM-PHATE) on [slices, units, probes].
#pragma once
#include <limits>
#include <vector>

#include "mmphate/log.hpp"
#include "mmphate/options.hpp"
#include "mmphate/types.hpp"

namespace mmphate {

struct EmbedResult {
  RowMatrix embedding;            // nodes x n_components
  int t = 0;                      // diffusion time used
  bool t_automatic = false;
  std::vector<double> entropy;    // von Neumann entropy curve (when t was automatic)
  bool landmarks_used = false;
  int n_landmarks = 0;
  Index n_nodes = 0;
  Index kernel_nnz = 0;
  double interslice_eps = std::numeric_limits<double>::quiet_NaN();  // multislice only
  Index constant_nodes = 0;       // multislice: nodes whose trace was constant
  int mds_iterations = 0;
  KnnMethod knn_method = KnnMethod::exact;  // plain PHATE: the back end that ran
  StageTimes times;
};

// Everything after the kernel. K must be symmetric with positive row sums.
EmbedResult embed_kernel(const SparseMatrix& K, const Options& opt);

// Plain PHATE on the rows of data.
EmbedResult run_phate(const RowMatrix& data, const Options& opt);

// Multislice PHATE. features: (slices * units) x probes, row = slice * units + unit.
// Normalisation (z-score per node) is applied here when opt.normalize is set.
EmbedResult run_multislice(const RowMatrix& features, Index slices, Index units, const Options& opt);

// Kernel of plain PHATE (after optional PCA), exposed for tests and tools.
SparseMatrix phate_kernel(const RowMatrix& data, const Options& opt, KnnMethod* used = nullptr);

// Principal components: centred data projected on its top n_components directions.
RowMatrix pca(const RowMatrix& data, int n_components);

}  // namespace mmphate
