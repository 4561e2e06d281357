# Playlog's workloads (manifests/playlog.yaml), KEDA and its ScaledObject for the consumer.
locals {
  warehouse = "bigquery://${var.project_id}/${var.dataset_prefix}"
  playlog_values = merge(
    {
      namespace         = local.namespace
      image             = var.playlog_image
      brokers           = local.brokers
      warehouse         = local.warehouse
      consumer_gsa      = google_service_account.workload["consumer"].email
      vault_gsa         = google_service_account.workload["vault"].email
      migrate_gsa       = google_service_account.workload["migrate"].email
      bigquery_location = var.bigquery_location
      # One migrate Job per image: a Job's spec is immutable, and a new release may bring migrations.
      migrate_job       = "migrate-${substr(sha256(var.playlog_image), 0, 10)}"
      producer_replicas = var.producer.replicas
      producer_users    = var.producer.users
      producer_speed    = var.producer.speed
      partitions        = var.kafka_partitions
      vault_every       = var.vault_every
      flush_interval    = var.consumer_flush_interval
      lag_threshold     = var.consumer_lag_threshold
    },
    merge([
      for workload, r in var.resources : {
        "${workload}_cpu_request"    = r.cpu_request
        "${workload}_memory_request" = r.memory_request
        "${workload}_cpu_limit"      = r.cpu_limit
        "${workload}_memory_limit"   = r.memory_limit
      }
    ]...)
  )
}

resource "kubernetes_namespace_v1" "playlog" {
  metadata {
    name = local.namespace
    labels = {
      # Pod Security Admission: Playlog's pods meet the restricted profile.
      "pod-security.kubernetes.io/enforce" = "restricted"
    }
  }
  depends_on = [google_container_node_pool.pools]
}

data "kubectl_file_documents" "playlog" {
  content = templatefile("${path.module}/manifests/playlog.yaml", local.playlog_values)
}

resource "kubectl_manifest" "playlog" {
  for_each  = data.kubectl_file_documents.playlog.manifests
  yaml_body = each.value
  # The pods mount their KafkaUser's Secret and the cluster CA.
  depends_on = [kubernetes_namespace_v1.playlog, kubectl_manifest.topic, kubectl_manifest.kafka_user, kubernetes_secret_v1.kafka_ca_for_playlog, google_bigquery_dataset.playlog]
}

resource "helm_release" "keda" {
  name             = "keda"
  repository       = "https://kedacore.github.io/charts"
  chart            = "keda"
  version          = var.chart_versions.keda
  namespace        = "keda"
  create_namespace = true
  values           = [yamlencode({ nodeSelector = { pool = "system" } })]
  depends_on       = [google_container_node_pool.pools]
}

data "kubectl_file_documents" "consumer_scaler" {
  content = templatefile("${path.module}/manifests/keda-scaledobject.yaml", local.playlog_values)
}

# The TriggerAuthentication (KEDA's Kafka login) and the ScaledObject.
resource "kubectl_manifest" "consumer_scaler" {
  for_each   = data.kubectl_file_documents.consumer_scaler.manifests
  yaml_body  = each.value
  depends_on = [helm_release.keda, kubectl_manifest.playlog, kubectl_manifest.kafka_user, kubernetes_secret_v1.keda_kafka]
}
