// taskclusterProxy: the task reaches Taskcluster at http://taskcluster/ without credentials.
//  Link: creates a Docker network of the task's own (labelled as ctx.label_owner's), starts a
//        TaskclusterProxy (taskcluster_proxy.h) on that network's gateway address, admitting
//        only peers inside the network's subnet other than the gateway — i.e. this task's
//        container, the only one attached — and routes the container there: network, ExtraHosts
//        `taskcluster:<gateway>`, env TASKCLUSTER_PROXY_URL=http://taskcluster. Requests are
//        signed with the run's current temporary credentials (swapped on reclaim), authorized
//        for the task's scopes plus queue:create-artifact:<taskId>/<runId>.
//  Stop: stops the proxy and removes the network (the container is already gone).
// Needs the run's Taskcluster client, so `docker-worker run` (no queue) refuses it.
#include <arpa/inet.h>

#include "docker_worker/features.h"
#include "docker_worker/taskcluster_proxy.h"
#include "docker_worker/worker_labels.h"

namespace docker_worker {
namespace {

// Whether dotted-quad `ip` is inside `cidr` ("172.19.0.0/16").
bool InSubnet(const std::string& ip, const std::string& cidr) {
  size_t slash = cidr.find('/');
  if (slash == std::string::npos) return false;
  in_addr addr{}, net{};
  if (inet_pton(AF_INET, ip.c_str(), &addr) != 1) return false;
  if (inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &net) != 1) return false;
  int bits = 0;
  try {
    bits = std::stoi(cidr.substr(slash + 1));
  } catch (...) {
    return false;
  }
  if (bits < 0 || bits > 32) return false;
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (ntohl(addr.s_addr) & mask) == (ntohl(net.s_addr) & mask);
}

class TaskclusterProxyFeature final : public Feature {
 public:
  std::string Name() const override { return "taskclusterProxy"; }

  Status Link(TaskContext& ctx) override {
    if (!ctx.taskcluster) {
      return Status::TaskFailed(
          "taskclusterProxy needs the run's Taskcluster credentials, which only a worker "
          "started with `docker-worker start` has");
    }
    const std::string run = ctx.task_id + "/" + std::to_string(ctx.run_id);
    auto id = ctx.docker.CreateNetwork(
        "docker-worker-" + ctx.task_id + "-" + std::to_string(ctx.run_id),
        RunLabels(ctx.label_owner, ctx.task_id, ctx.run_id));
    if (!id.ok()) return Status::TaskFailed("cannot create the proxy network: " + id.status().message());
    network_id_ = *id;
    auto net = ctx.docker.InspectNetwork(network_id_);
    if (!net.ok()) return Status::TaskFailed("cannot inspect the proxy network: " + net.status().message());
    if (net->gateway.empty() || net->subnet.empty()) {
      return Status::TaskFailed("the proxy network has no IPv4 gateway");
    }
    TaskclusterProxyOptions options;
    options.listen_address = net->gateway;
    options.port = ctx.config.taskcluster_proxy_port;
    options.allow_peer = [gateway = net->gateway, subnet = net->subnet](const std::string& peer) {
      return peer != gateway && InSubnet(peer, subnet);
    };
    options.authorized_scopes = ctx.task.scopes;
    options.authorized_scopes.push_back("queue:create-artifact:" + run);
    auto proxy = TaskclusterProxy::Start(*ctx.taskcluster, ctx.clock, std::move(options));
    if (!proxy.ok()) return Status::TaskFailed(proxy.status().message());
    proxy_ = std::move(*proxy);

    std::string host = "taskcluster";
    std::string url = "http://taskcluster";
    if (proxy_->port() != 80) url += ":" + std::to_string(proxy_->port());
    ctx.network = net->name.empty() ? network_id_ : net->name;
    ctx.extra_hosts.push_back(host + ":" + net->gateway);
    ctx.env.emplace_back("TASKCLUSTER_PROXY_URL", url);
    return Status::Ok();
  }

  Status Stop(TaskContext& ctx, const RunOutcome&) override {
    if (proxy_) proxy_->Stop();
    proxy_.reset();
    if (!network_id_.empty()) {
      // A network that cannot go now is swept with the worker's other leftovers later.
      (void)ctx.docker.RemoveNetwork(network_id_);
      network_id_.clear();
    }
    return Status::Ok();
  }

 private:
  std::string network_id_;
  std::unique_ptr<TaskclusterProxy> proxy_;
};

}  // namespace

std::unique_ptr<Feature> MakeTaskclusterProxyFeature() {
  return std::make_unique<TaskclusterProxyFeature>();
}

}  // namespace docker_worker
