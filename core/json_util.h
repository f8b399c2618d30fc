// JSON helpers shared by every config reader: files parsed with line/column
// errors, unknown keys rejected with the closest valid key suggested, typed
// reads whose errors name where the value sits ("model.layers[3]: key 'L'
// must be an integer, got \"ten\"").
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace deja::core {

using Json = nlohmann::json;

// Parses a JSON file; throws std::runtime_error "path:line:col: message" on a
// syntax error and "path: cannot open: reason" when it cannot be read.
Json load_json_file(const std::string& path);
Json parse_json_text(const std::string& text, const std::string& source_name);

// The candidate closest to `name` by edit distance, or "" when none is close.
std::string closest_match(const std::string& name, const std::vector<std::string>& candidates);

// Throws std::invalid_argument "<where>: unknown key 'x' (did you mean 'y'?)"
// for the first key of `object` not in `allowed`, or "<where>: expected an
// object" when it is not an object.
void reject_unknown_keys(const Json& object, const std::vector<std::string>& allowed,
                         const std::string& where);

// Typed reads with defaults; errors name `where` and the key.
int64_t read_int(const Json& object, const std::string& key, int64_t fallback,
                 const std::string& where);
double read_number(const Json& object, const std::string& key, double fallback,
                   const std::string& where);
bool read_bool(const Json& object, const std::string& key, bool fallback, const std::string& where);
std::string read_string(const Json& object, const std::string& key, const std::string& fallback,
                        const std::string& where);
// An integer or a two-element integer list: 5 -> {5, 5}, [3, 5] -> {3, 5}.
std::pair<int64_t, int64_t> read_pair(const Json& object, const std::string& key,
                                      std::pair<int64_t, int64_t> fallback,
                                      const std::string& where);

// Applies one "a.b.3.c=value" override (value parsed as JSON when it parses,
// else taken as a string). Throws std::invalid_argument naming the path when a
// middle part does not exist.
void apply_override(Json& config, const std::string& assignment);

}  // namespace deja::core
