#include "engine/embed/procrustes.hpp"

#include <cmath>

#include "mmphate/error.hpp"

namespace mmphate {

void Alignment::apply(RowMatrix& X) const {
  X = (scale * (X * rotation)).rowwise() + shift;
}

Alignment procrustes(const RowMatrix& current, const RowMatrix& previous, bool with_scale) {
  if (current.rows() != previous.rows() || current.cols() != previous.cols() || current.rows() < 1)
    throw Error("procrustes: the two layouts must hold the same nodes (" + std::to_string(current.rows()) + " x " +
                std::to_string(current.cols()) + " vs " + std::to_string(previous.rows()) + " x " +
                std::to_string(previous.cols()) + ")");
  const Index n = current.rows(), d = current.cols();
  const Eigen::RowVectorXd mc = current.colwise().mean(), mp = previous.colwise().mean();
  const RowMatrix C = current.rowwise() - mc, P = previous.rowwise() - mp;
  const Matrix cross = C.transpose() * P;  // d x d
  Eigen::JacobiSVD<Matrix> svd(cross, Eigen::ComputeFullU | Eigen::ComputeFullV);
  Alignment a;
  a.rotation = svd.matrixU() * svd.matrixV().transpose();
  if (n < d + 1) a.rotation = Matrix::Identity(d, d);  // too few points to fix a rotation
  a.reflected = a.rotation.determinant() < 0;
  if (with_scale && n >= d + 1) {
    // Least-squares scale given R: trace(R^T C^T P) / |C|^2 (the singular values' sum when
    // R comes from the SVD; computed directly so the forced identity above stays consistent).
    const double cc = C.squaredNorm(), cp = (cross.transpose() * a.rotation).trace();
    if (cc > 0 && cp > 0 && std::isfinite(cp / cc)) a.scale = cp / cc;
  }
  a.shift = mp - a.scale * (mc * a.rotation);
  a.shared = n;
  const double inv = 1.0 / static_cast<double>(n);
  a.rms_before = std::sqrt((current - previous).rowwise().squaredNorm().sum() * inv);
  RowMatrix aligned = current;
  a.apply(aligned);
  a.rms_after = std::sqrt((aligned - previous).rowwise().squaredNorm().sum() * inv);
  a.radius = std::sqrt(P.rowwise().squaredNorm().sum() * inv);
  return a;
}

}  // namespace mmphate
