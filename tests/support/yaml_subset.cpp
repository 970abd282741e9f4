#include "tests/support/yaml_subset.hpp"

#include <cctype>
#include <fstream>
#include <sstream>
#include <vector>

namespace dinodia::testing {
namespace {

using Json = nlohmann::ordered_json;

struct Line {
  int number;           // 1-based, for error messages
  std::size_t indent;   // leading spaces
  std::string content;  // without indentation, comment and trailing spaces
};

[[noreturn]] void fail(int line, const std::string& what) {
  throw YamlSubsetError("yaml line " + std::to_string(line) + ": " + what);
}

// Cuts a trailing comment: `#` at the start or after a space, outside quotes.
std::string strip_comment(const std::string& s, int line) {
  char quote = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote == '"') {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quote = 0;
      }
    } else if (quote == '\'') {
      if (c == '\'') {
        if (i + 1 < s.size() && s[i + 1] == '\'') {
          ++i;
        } else {
          quote = 0;
        }
      }
    } else if (c == '#' && (i == 0 || s[i - 1] == ' ')) {
      return s.substr(0, i);
    } else if ((c == '"' || c == '\'') && (i == 0 || s[i - 1] == ' ')) {
      quote = c;
    }
  }
  if (quote != 0) fail(line, "unterminated quoted scalar");
  return s;
}

std::string rtrim(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> out;
  std::size_t start = 0;
  int number = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string raw(text.substr(start, end - start));
    ++number;
    start = end + 1;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    if (raw.find('\t') != std::string::npos) fail(number, "tab characters are not supported");
    std::size_t indent = raw.find_first_not_of(' ');
    if (indent == std::string::npos) continue;
    std::string content = rtrim(strip_comment(raw.substr(indent), number));
    if (content.empty()) continue;
    if (content == "---" || content == "..." || content.starts_with("--- ") ||
        content.front() == '%') {
      fail(number, "document markers and directives are not supported");
    }
    out.push_back({number, indent, content});
  }
  return out;
}

bool is_sequence_item(const std::string& content) {
  return content == "-" || content.starts_with("- ");
}

// Parses a quoted scalar starting at s[0]; `consumed` receives its length including quotes.
std::string parse_quoted(const std::string& s, std::size_t& consumed, int line) {
  const char quote = s[0];
  std::string out;
  for (std::size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (quote == '\'') {
      if (c == '\'') {
        if (i + 1 < s.size() && s[i + 1] == '\'') {
          out += '\'';
          ++i;
          continue;
        }
        consumed = i + 1;
        return out;
      }
      out += c;
      continue;
    }
    if (c == '"') {
      consumed = i + 1;
      return out;
    }
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= s.size()) break;
    switch (s[i]) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case '/':
        out += '/';
        break;
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      default:
        fail(line, std::string("unsupported escape \\") + s[i]);
    }
  }
  fail(line, "unterminated quoted scalar");
}

// Position of the ':' that ends a plain key (followed by a space or the end), or npos.
std::size_t plain_key_colon(const std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == ':' && (i + 1 == s.size() || s[i + 1] == ' ')) return i;
  }
  return std::string::npos;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

Json parse_scalar(const std::string& text, int line) {
  if (text.front() == '"' || text.front() == '\'') {
    std::size_t consumed = 0;
    std::string value = parse_quoted(text, consumed, line);
    if (consumed != text.size()) fail(line, "text after a quoted scalar: " + text);
    return value;
  }
  if (text == "[]") return Json::array();
  static const std::string kIndicators = "[]{}&*!|>%@`,?";
  if (kIndicators.find(text.front()) != std::string::npos || is_sequence_item(text)) {
    fail(line, "unsupported YAML construct: " + text);
  }
  if (plain_key_colon(text) != std::string::npos) {
    fail(line, "a mapping is not allowed here: " + text);
  }
  if (text == "true") return true;
  if (text == "false") return false;
  // Words YAML 1.1 (PyYAML) reads as booleans or null; we refuse rather than guess.
  static const std::vector<std::string> kAmbiguous = {
      "True", "TRUE", "False", "FALSE", "yes", "Yes",  "YES",  "no",   "No",  "NO",
      "on",   "On",   "ON",    "off",   "Off", "OFF",  "y",    "Y",    "n",   "N",
      "null", "Null", "NULL",  "~",     "=",   ".inf", ".nan", ".NaN", ".Inf"};
  for (const auto& word : kAmbiguous) {
    if (text == word) fail(line, "ambiguous plain scalar (quote it): " + text);
  }
  std::string_view digits = text;
  if (digits.front() == '-' || digits.front() == '+') digits.remove_prefix(1);
  if (all_digits(digits)) {
    if (digits.size() > 1 && digits.front() == '0') fail(line, "0-prefixed number: " + text);
    if (digits.size() > 15) fail(line, "number too long: " + text);
    return std::stoll(text);
  }
  // Floats, hex, sexagesimal numbers, dates: PyYAML types these; demand quotes instead.
  char first = text.front();
  if (std::isdigit(static_cast<unsigned char>(first)) || first == '+' || first == '-' ||
      first == '.') {
    fail(line, "plain scalar that YAML may read as a number or date (quote it): " + text);
  }
  return text;
}

class Parser {
 public:
  explicit Parser(std::vector<Line> lines) : lines_(std::move(lines)) {}

  Json parse_document() {
    if (lines_.empty()) fail(0, "empty document");
    if (lines_[0].indent != 0) fail(lines_[0].number, "document must start at column 0");
    Json root = parse_block(lines_[0].indent);
    if (pos_ < lines_.size()) fail(lines_[pos_].number, "unexpected indentation");
    return root;
  }

 private:
  Json parse_block(std::size_t indent) {
    if (is_sequence_item(lines_[pos_].content)) return parse_sequence(indent);
    return parse_mapping(indent);
  }

  Json parse_sequence(std::size_t indent) {
    Json out = Json::array();
    while (pos_ < lines_.size() && lines_[pos_].indent == indent &&
           is_sequence_item(lines_[pos_].content)) {
      const Line& line = lines_[pos_];
      std::string item = line.content == "-" ? "" : line.content.substr(2);
      std::size_t first = item.find_first_not_of(' ');
      if (first == std::string::npos)
        fail(line.number, "nested blocks in a list are not supported");
      item = item.substr(first);
      if (item.front() != '"' && item.front() != '\'' &&
          plain_key_colon(item) != std::string::npos) {
        fail(line.number, "mappings inside a list are not supported");
      }
      out.push_back(parse_scalar(item, line.number));
      ++pos_;
      if (pos_ < lines_.size() && lines_[pos_].indent > indent) {
        fail(lines_[pos_].number, "unexpected indentation after a list item");
      }
    }
    return out;
  }

  Json parse_mapping(std::size_t indent) {
    Json out = Json::object();
    while (pos_ < lines_.size() && lines_[pos_].indent == indent) {
      const Line& line = lines_[pos_];
      if (is_sequence_item(line.content)) fail(line.number, "list item where a key was expected");
      std::string key;
      std::string rest;
      if (line.content.front() == '"' || line.content.front() == '\'') {
        std::size_t consumed = 0;
        key = parse_quoted(line.content, consumed, line.number);
        if (consumed >= line.content.size() || line.content[consumed] != ':') {
          fail(line.number, "expected ':' after a quoted key");
        }
        rest = line.content.substr(consumed + 1);
      } else {
        std::size_t colon = plain_key_colon(line.content);
        if (colon == std::string::npos) fail(line.number, "expected 'key: value': " + line.content);
        key = line.content.substr(0, colon);
        rest = line.content.substr(colon + 1);
        static const std::string kKeyIndicators = "[]{}&*!|>%@`,?#";
        if (key.empty() || kKeyIndicators.find(key.front()) != std::string::npos) {
          fail(line.number, "unsupported key: " + line.content);
        }
      }
      if (!rest.empty() && rest.front() != ' ') fail(line.number, "expected a space after ':'");
      std::size_t first = rest.find_first_not_of(' ');
      if (out.contains(key)) fail(line.number, "duplicate key '" + key + "'");
      ++pos_;
      if (first != std::string::npos) {
        out[key] = parse_scalar(rest.substr(first), line.number);
        if (pos_ < lines_.size() && lines_[pos_].indent > indent) {
          fail(lines_[pos_].number, "unexpected indentation after a scalar value");
        }
        continue;
      }
      // `key:` alone: a nested block follows (a list may sit at the key's own indentation).
      bool has_child = pos_ < lines_.size() &&
                       (lines_[pos_].indent > indent ||
                        (lines_[pos_].indent == indent && is_sequence_item(lines_[pos_].content)));
      if (!has_child) fail(line.number, "key '" + key + "' has no value (null is not supported)");
      out[key] = parse_block(lines_[pos_].indent);
    }
    if (pos_ < lines_.size() && lines_[pos_].indent > indent) {
      fail(lines_[pos_].number, "unexpected indentation");
    }
    return out;
  }

  std::vector<Line> lines_;
  std::size_t pos_ = 0;
};

}  // namespace

nlohmann::ordered_json parse_yaml_subset(std::string_view text) {
  return Parser(split_lines(text)).parse_document();
}

nlohmann::ordered_json load_yaml_subset(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw YamlSubsetError("cannot open " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  try {
    return parse_yaml_subset(buf.str());
  } catch (const YamlSubsetError& e) {
    throw YamlSubsetError(path + ": " + e.what());
  }
}

}  // namespace dinodia::testing
