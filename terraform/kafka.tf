# Kafka on GKE through the Strimzi operator: KRaft nodes that are both broker and controller, and one
# KafkaTopic per event topic plus the dead-letter topic.
locals {
  kafka_namespace = "kafka"
  kafka_cluster   = "playlog"
  brokers         = "${local.kafka_cluster}-kafka-bootstrap.${local.kafka_namespace}.svc:9092"
  kafka_rf        = min(var.kafka_replicas, 3)
  topics = {
    listen_events        = var.kafka_partitions
    page_view_events     = var.kafka_partitions
    auth_events          = var.kafka_partitions
    status_change_events = var.kafka_partitions
    # Bad input is rare; one partition keeps it in arrival order.
    dead_letter_events = 1
  }
}

resource "helm_release" "strimzi" {
  name             = "strimzi"
  repository       = "oci://quay.io/strimzi-helm"
  chart            = "strimzi-kafka-operator"
  version          = var.chart_versions.strimzi
  namespace        = local.kafka_namespace
  create_namespace = true
  values = [yamlencode({
    watchNamespaces = [local.kafka_namespace]
    nodeSelector    = { pool = "system" }
  })]
  depends_on = [google_container_node_pool.pools]
}

resource "kubectl_manifest" "kafka_node_pool" {
  yaml_body = yamlencode({
    apiVersion = "kafka.strimzi.io/v1beta2"
    kind       = "KafkaNodePool"
    metadata = {
      name      = "nodes"
      namespace = local.kafka_namespace
      labels    = { "strimzi.io/cluster" = local.kafka_cluster }
    }
    spec = {
      replicas = var.kafka_replicas
      roles    = ["controller", "broker"]
      storage = {
        type    = "jbod"
        volumes = [{ id = 0, type = "persistent-claim", size = "${var.kafka_storage_gb}Gi", deleteClaim = false, kraftMetadata = "shared" }]
      }
      resources = {
        requests = { cpu = "500m", memory = "2Gi" }
        limits   = { cpu = "2", memory = "4Gi" }
      }
      template = { pod = { affinity = { nodeAffinity = { requiredDuringSchedulingIgnoredDuringExecution = { nodeSelectorTerms = [{ matchExpressions = [{ key = "pool", operator = "In", values = ["system"] }] }] } } } } }
    }
  })
  depends_on = [helm_release.strimzi]
}

resource "kubectl_manifest" "kafka" {
  yaml_body = yamlencode({
    apiVersion = "kafka.strimzi.io/v1beta2"
    kind       = "Kafka"
    metadata = {
      name        = local.kafka_cluster
      namespace   = local.kafka_namespace
      annotations = { "strimzi.io/node-pools" = "enabled", "strimzi.io/kraft" = "enabled" }
    }
    spec = {
      kafka = {
        version = "4.1.0"
        listeners = [
          { name = "plain", port = 9092, type = "internal", tls = false },
          { name = "tls", port = 9093, type = "internal", tls = true },
        ]
        config = {
          "offsets.topic.replication.factor"         = local.kafka_rf
          "transaction.state.log.replication.factor" = local.kafka_rf
          "transaction.state.log.min.isr"            = max(local.kafka_rf - 1, 1)
          "default.replication.factor"               = local.kafka_rf
          "min.insync.replicas"                      = max(local.kafka_rf - 1, 1)
          "auto.create.topics.enable"                = false
        }
      }
      entityOperator = { topicOperator = {}, userOperator = {} }
    }
  })
  depends_on = [kubectl_manifest.kafka_node_pool]
}

resource "kubectl_manifest" "topic" {
  for_each = local.topics
  yaml_body = yamlencode({
    apiVersion = "kafka.strimzi.io/v1beta2"
    kind       = "KafkaTopic"
    metadata = {
      name      = replace(each.key, "_", "-")
      namespace = local.kafka_namespace
      labels    = { "strimzi.io/cluster" = local.kafka_cluster }
    }
    spec = {
      topicName  = each.key
      partitions = each.value
      replicas   = local.kafka_rf
      config = {
        "retention.ms"     = var.kafka_retention_hours * 3600000
        "compression.type" = "producer"
      }
    }
  })
  depends_on = [kubectl_manifest.kafka]
}
