/// @file
/// Matrix aliases shared by the numeric core. Data matrices are row-major (one node per
/// row, as stored in .npy files); sparse kernels are row-major CSR so that row-wise
/// normalisation and row extraction are cheap.
#pragma once
#include <Eigen/Dense>
#include <Eigen/Sparse>

namespace mmphate {

using Index = Eigen::Index;
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Matrix = Eigen::MatrixXd;
using Vector = Eigen::VectorXd;
using Triplet = Eigen::Triplet<double>;

// Eigen's row-major sparse matrix, plus the move constructor and move assignment Eigen 3.4
// lacks: without them, assigning a returned matrix to an existing variable or moving a struct
// that holds one deep-copies it (measured: the 4.8 GB kernel of a 1.28 M-node trace copied
// once more, and every live frame's window kernel copied once). Otherwise Eigen's type.
class SparseMatrix : public Eigen::SparseMatrix<double, Eigen::RowMajor> {
 public:
  using Base = Eigen::SparseMatrix<double, Eigen::RowMajor>;
  using Base::Base;
  using Base::operator=;
  SparseMatrix() = default;
  SparseMatrix(const SparseMatrix&) = default;
  SparseMatrix(SparseMatrix&& other) noexcept { swap(other); }
  SparseMatrix(const Base& other) : Base(other) {}
  SparseMatrix(Base&& other) noexcept { swap(other); }
  SparseMatrix& operator=(const SparseMatrix& other) {
    Base::operator=(other);
    return *this;
  }
  SparseMatrix& operator=(SparseMatrix&& other) noexcept {
    swap(other);
    return *this;
  }
};

}  // namespace mmphate
