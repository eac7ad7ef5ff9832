#pragma once
// The pages' templates (src/web/templates/*.mustache, embedded at build
// time) and their rendering by mstch, which HTML-escapes every {{value}};
// {{{value}}} is used only for HTML pushgate made itself (a rendered body,
// the report, Graphviz's SVG).

#include <string>

#include <mstch/mstch.hpp>

namespace pushgate::web {

/// Template `name` (its file name without .mustache) with `data`; every
/// template is available as a partial ({{> name}}). Throws std::out_of_range
/// for an unknown name (a programming error).
std::string render_template(const std::string& name, const mstch::node& data);

/// A whole page: `body_template` rendered with `data`, inside the layout
/// with `title` (and `data["extra_nav"]`, links added to the navigation).
std::string render_page(const std::string& title, const std::string& body_template, mstch::map data);

}  // namespace pushgate::web
