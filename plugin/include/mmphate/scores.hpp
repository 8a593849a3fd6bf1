/// @file
/// Community-structure scores of a multislice embedding (docs/METHOD.md section 4).
///
/// Neighbourhood preservation: for a node i and a group G(i) of comparable nodes, the overlap
/// |kNN_trace(i) ∩ kNN_embedding(i)| / k, where both neighbour sets are taken among G(i) \ {i},
/// in the z-scored trace space and in the embedding. Averaged over the scored nodes.
///  * intra-step: G(i) = the units of i's slice (same epoch and time step);
///  * inter-step: G(i) = the slice-points of i's unit (every epoch and time step).
/// k is capped at |G(i)| - 1. 1.0 means the embedding keeps every neighbourhood; a random
/// embedding scores about k / (|G| - 1).
/// For large inputs the score is estimated on a seeded uniform sample of at most `max_queries`
/// nodes per family (the neighbour searches still run over the whole group); the sample sizes
/// are reported.
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmphate/trace.hpp"
#include "mmphate/types.hpp"

namespace mmphate {

struct ScoreOptions {
  std::vector<int> ks{10, 40};
  Index max_queries = 20000;  ///< per family; 0 = score every node
  std::uint64_t seed = 0;
  int threads = 1;
};

struct CommunityScores {
  std::vector<int> ks;
  std::vector<double> intra_step;  ///< one per k
  std::vector<double> inter_step;  ///< one per k
  Index intra_queries = 0;         ///< nodes scored
  Index inter_queries = 0;
  Index nodes = 0;
  bool sampled() const { return intra_queries < nodes || inter_queries < nodes; }
};

/// features: graph rows x probes, the (z-scored) trace the embedding was computed from.
CommunityScores community_scores(const RowMatrix& features, const NodeIndex& nodes, const RowMatrix& embedding,
                                 const ScoreOptions& opt = {});

/// The scores as JSON: the one shape of every file that holds them (frames' "scores",
/// `mmphate embed`'s summary.json, `mmphate score`, the benches). "k", "intra_step" and
/// "inter_step" are the first k's scores (the headline), "by_k" lists every k scored as
/// {"k", "intra_step", "inter_step"}; then "intra_step_nodes_scored",
/// "inter_step_nodes_scored", "nodes" and "sampled". Scores are rounded to
/// `significant_digits` (0: exact); a score that could not be computed is null.
nlohmann::json scores_to_json(const CommunityScores& scores, int significant_digits = 0);

/// "Most active class" per graph row: the class whose probes have the largest summed |value|
/// (values z-scored). labels: one class id (>= 0) per probe.
std::vector<int> most_active_class(const RowMatrix& features, const std::vector<std::int64_t>& labels);

}  // namespace mmphate
