#include "core/json_util.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace deja::core {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string type_error(const std::string& where, const std::string& key, const char* expected,
                       const Json& value) {
  return where + ": key '" + key + "' must be " + expected + ", got " + value.dump();
}

}  // namespace

Json parse_json_text(const std::string& text, const std::string& source_name) {
  try {
    return Json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const Json::parse_error& e) {
    // Turn the byte offset into line:column for people.
    size_t line = 1, col = 1;
    size_t end = std::min<size_t>(e.byte ? e.byte - 1 : 0, text.size());
    for (size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    auto pos = what.find("syntax error");
    if (pos != std::string::npos) what = what.substr(pos);
    throw std::runtime_error(source_name + ":" + std::to_string(line) + ":" + std::to_string(col) +
                             ": malformed JSON: " + what);
  }
}

Json load_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open (missing or unreadable)");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_json_text(buffer.str(), path);
}

std::string closest_match(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, name.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(name, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

void reject_unknown_keys(const Json& object, const std::vector<std::string>& allowed,
                         const std::string& where) {
  if (!object.is_object()) throw std::invalid_argument(where + ": expected an object, got " + object.dump());
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string message = where + ": unknown key '" + key + "'";
    std::string hint = closest_match(key, allowed);
    if (!hint.empty()) message += " (did you mean '" + hint + "'?)";
    throw std::invalid_argument(message);
  }
}

int64_t read_int(const Json& object, const std::string& key, int64_t fallback,
                 const std::string& where) {
  if (!object.contains(key)) return fallback;
  const Json& v = object.at(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())))
    return static_cast<int64_t>(v.get<double>());
  throw std::invalid_argument(type_error(where, key, "an integer", v));
}

double read_number(const Json& object, const std::string& key, double fallback,
                   const std::string& where) {
  if (!object.contains(key)) return fallback;
  const Json& v = object.at(key);
  if (!v.is_number()) throw std::invalid_argument(type_error(where, key, "a number", v));
  return v.get<double>();
}

bool read_bool(const Json& object, const std::string& key, bool fallback, const std::string& where) {
  if (!object.contains(key)) return fallback;
  const Json& v = object.at(key);
  if (!v.is_boolean()) throw std::invalid_argument(type_error(where, key, "true or false", v));
  return v.get<bool>();
}

std::string read_string(const Json& object, const std::string& key, const std::string& fallback,
                        const std::string& where) {
  if (!object.contains(key)) return fallback;
  const Json& v = object.at(key);
  if (!v.is_string()) throw std::invalid_argument(type_error(where, key, "a string", v));
  return v.get<std::string>();
}

std::pair<int64_t, int64_t> read_pair(const Json& object, const std::string& key,
                                      std::pair<int64_t, int64_t> fallback,
                                      const std::string& where) {
  if (!object.contains(key)) return fallback;
  const Json& v = object.at(key);
  if (v.is_number_integer()) return {v.get<int64_t>(), v.get<int64_t>()};
  if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer())
    return {v[0].get<int64_t>(), v[1].get<int64_t>()};
  throw std::invalid_argument(type_error(where, key, "an integer or a list of two integers", v));
}

void apply_override(Json& config, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw std::invalid_argument("--set " + assignment + ": expected key.path=value");
  std::string path = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  Json value;
  try {
    value = Json::parse(text);
  } catch (const Json::parse_error&) {
    value = text;  // bare words are strings: --set data.dataset=cifar10
  }
  Json* node = &config;
  std::string walked;
  size_t start = 0;
  for (;;) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) throw std::invalid_argument("--set " + assignment + ": empty key in path");
    bool last = dot == std::string::npos;
    walked += (walked.empty() ? "" : ".") + part;
    if (node->is_array()) {
      size_t index = 0;
      try {
        index = std::stoul(part);
      } catch (const std::exception&) {
        throw std::invalid_argument("--set " + assignment + ": '" + walked + "' indexes a list with '" + part + "'");
      }
      if (index >= node->size())
        throw std::invalid_argument("--set " + assignment + ": '" + walked + "' is past the end of a list of " +
                                    std::to_string(node->size()));
      node = &(*node)[index];
    } else {
      if (!node->is_object()) throw std::invalid_argument("--set " + assignment + ": '" + walked + "' is inside a non-object");
      if (!last && !node->contains(part)) (*node)[part] = Json::object();
      node = &(*node)[part];
    }
    if (last) break;
    start = dot + 1;
  }
  *node = value;
}

}  // namespace deja::core
