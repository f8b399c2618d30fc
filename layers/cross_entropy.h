// Softmax cross-entropy loss over logits [N, C] and integer labels: the mean
// over rows of -log softmax(logits)[label], computed with the max-shifted
// log-sum-exp (stable for large logits). Returns a one-element tensor [1].
// The backward saves the softmax probabilities: dlogits = (p - onehot) / N.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace deja::layers {

// Throws std::invalid_argument for logits that are not [N, C], a label count
// that is not N, or a label out of [0, C)
// ("cross_entropy: label 7 of row 3 is out of range [0, 5)").
// *correct (if given) receives the count of rows whose argmax == label (the
// first maximum wins ties).
core::Tensor softmax_cross_entropy(const core::Tensor& logits, const std::vector<int32_t>& labels,
                                   int64_t* correct = nullptr);

}  // namespace deja::layers
