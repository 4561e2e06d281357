# kube-prometheus-stack, with Playlog's dashboard and rules loaded from the same files docker-compose uses
# (docker/monitoring), so that there is one dashboard and one set of alerts.
locals {
  monitoring_dir = "${path.module}/../docker/monitoring"
}

resource "helm_release" "kube_prometheus_stack" {
  name             = "kube-prometheus-stack"
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "kube-prometheus-stack"
  version          = var.chart_versions.kube_prometheus_stack
  namespace        = "monitoring"
  create_namespace = true
  values = [yamlencode({
    prometheus = {
      prometheusSpec = {
        # Pick up PodMonitors and PrometheusRules from every namespace, not only the chart's own.
        podMonitorSelectorNilUsesHelmValues = false
        ruleSelectorNilUsesHelmValues       = false
        retention                           = "15d"
        nodeSelector                        = { pool = "system" }
      }
    }
    grafana = {
      sidecar = { dashboards = { enabled = true, label = "grafana_dashboard", searchNamespace = "ALL" } }
    }
  })]
  depends_on = [google_container_node_pool.pools]
}

resource "kubernetes_config_map_v1" "dashboard" {
  metadata {
    name      = "playlog-dashboard"
    namespace = "monitoring"
    labels    = { grafana_dashboard = "1" }
  }
  data = {
    "playlog-pipeline.json" = file("${local.monitoring_dir}/grafana/dashboards/playlog-pipeline.json")
  }
  depends_on = [helm_release.kube_prometheus_stack]
}

resource "kubectl_manifest" "rules" {
  yaml_body = yamlencode({
    apiVersion = "monitoring.coreos.com/v1"
    kind       = "PrometheusRule"
    metadata   = { name = "playlog", namespace = "monitoring", labels = { release = "kube-prometheus-stack" } }
    spec       = yamldecode(file("${local.monitoring_dir}/prometheus/rules/playlog.rules.yml"))
  })
  depends_on = [helm_release.kube_prometheus_stack]
}

resource "kubectl_manifest" "podmonitor" {
  yaml_body  = templatefile("${path.module}/manifests/podmonitor.yaml", local.playlog_values)
  depends_on = [helm_release.kube_prometheus_stack, kubernetes_namespace_v1.playlog]
}
