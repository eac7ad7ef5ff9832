#include <pushgate/hosts.hpp>

namespace pushgate::hosts {

Result<std::unique_ptr<Registry>> Registry::create(const config::Config& config) {
  auto r = std::make_unique<Registry>();
  for (const config::Host& h : config.hosts) {
    if (h.kind == "local") r->add(make_local(h));
    else if (h.kind == "baremetal") r->add(make_baremetal(h));
    else if (h.kind == "libvirt") r->add(make_libvirt(h));
    else return Status::invalid_argument("host " + h.name + ": unknown kind " + h.kind);
  }
  return r;
}

Host* Registry::find(const std::string& name) const {
  for (const auto& h : hosts_) {
    if (h->name() == name) return h.get();
  }
  return nullptr;
}

}  // namespace pushgate::hosts
