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
using SparseMatrix = Eigen::SparseMatrix<double, Eigen::RowMajor>;
using Triplet = Eigen::Triplet<double>;

}  // namespace mmphate
