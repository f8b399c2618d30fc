// TextCorpus: a plain-text file for language models, split by lines (the last
// valid_fraction then test_fraction of the lines are valid and test), tokenised
// into words (whitespace separated, <eos> per line) or characters (bytes,
// newline kept as a token). The vocabulary is built from the training split
// only: id 0 is <unk>, then (word level) <eos>, then tokens by decreasing count
// (ties alphabetical); tokens seen fewer than min_count times, beyond
// max_vocab, or absent from train map to <unk>. A literal "<unk>" in the text
// is the unknown token.
// BpttBatcher: the standard batchify for truncated back-propagation through
// time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace deja::data {

struct TextCorpusOptions {
  std::string level = "word";  // or "char"
  double valid_fraction = 0.05, test_fraction = 0.05;
  int64_t min_count = 1;  // rarer words -> <unk>
  int64_t max_vocab = 0;  // 0 = no limit (counts <unk> and <eos>)
  bool add_eos = true;    // word level: <eos> per line
};

class TextCorpus {
 public:
  TextCorpus(const std::string& path, const TextCorpusOptions& options);
  const std::vector<std::string>& vocabulary() const { return vocabulary_; }
  int32_t unk_id() const { return 0; }
  const std::vector<int32_t>& train() const { return train_; }
  const std::vector<int32_t>& valid() const { return valid_; }
  const std::vector<int32_t>& test() const { return test_; }
  std::string describe() const;
  int64_t unknown_in_train() const { return unknown_train_; }  // tokens mapped to <unk>

 private:
  std::string path_;
  TextCorpusOptions options_;
  std::vector<std::string> vocabulary_;
  std::vector<int32_t> train_, valid_, test_;
  int64_t unknown_train_ = 0;
};

class BpttBatcher {
  // The token stream split into `batch` contiguous streams (the tail that does
  // not fill a stream is dropped); window w covers positions
  // [w*seq_len, w*seq_len + seq_len) of each stream (the last window may be
  // shorter).
 public:
  BpttBatcher(const std::vector<int32_t>& tokens, int64_t batch, int64_t seq_len);
  int64_t windows() const;
  int64_t stream_length() const { return stream_length_; }
  // inputs and targets: [batch, len] batch-major as floats holding token ids
  // (targets = next token); returns len. inputs is reallocated when its shape
  // differs.
  int64_t get(int64_t window, core::Tensor& inputs, std::vector<int32_t>& targets) const;

 private:
  std::vector<int32_t> tokens_;  // own copy: the batcher may outlive the caller's vector
  int64_t batch_, seq_len_, stream_length_;
};

}  // namespace deja::data
