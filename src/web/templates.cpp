#include "templates.hpp"

#include <map>
#include <string_view>
#include <utility>
#include <vector>

namespace pushgate::web {

extern const std::vector<std::pair<std::string_view, std::string_view>> kTemplates;

namespace {

const std::map<std::string, std::string>& templates() {
  static const std::map<std::string, std::string> all = [] {
    std::map<std::string, std::string> m;
    for (const auto& [name, text] : kTemplates) m.emplace(std::string(name), std::string(text));
    return m;
  }();
  return all;
}

}  // namespace

std::string render_template(const std::string& name, const mstch::node& data) {
  return mstch::render(templates().at(name), data, templates());
}

std::string render_page(const std::string& title, const std::string& body_template, mstch::map data) {
  data["title"] = title;
  std::string body = render_template(body_template, data);
  mstch::map layout{{"title", title}, {"body", body}};
  if (auto nav = data.find("extra_nav"); nav != data.end()) layout["extra_nav"] = nav->second;
  return render_template("layout", layout);
}

}  // namespace pushgate::web
