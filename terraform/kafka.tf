# Kafka on GKE through the Strimzi operator: KRaft nodes that are both broker and controller, and one
# KafkaTopic per event topic plus the dead-letter topic. Locked down: the only listener is TLS with
# SCRAM-SHA-512 logins, open (by NetworkPolicy) only to Playlog's and KEDA's namespaces; simple
# authorization, with one KafkaUser per workload (kafka_users.tf) holding least-privilege ACLs.
locals {
  kafka_namespace = "kafka"
  kafka_cluster   = "playlog"
  brokers         = "${local.kafka_cluster}-kafka-bootstrap.${local.kafka_namespace}.svc:9093"
  kafka_rf        = min(var.kafka_replicas, 3)
  topics = {
    listen_events        = var.kafka_partitions
    page_view_events     = var.kafka_partitions
    auth_events          = var.kafka_partitions
    status_change_events = var.kafka_partitions
    # Bad input is rare; one partition keeps it in arrival order.
    dead_letter_events = 1
    # playlog offers: its decisions, keyed by user, and its checkpoints, one per page-view partition.
    offer_events         = var.kafka_partitions
    playlog_offers_state = var.kafka_partitions
  }
  # The checkpoints are read to the end on every start: compacted to the latest per partition, so that a
  # restart reads one record per partition however long the history.
  compacted_topics = ["playlog_offers_state"]
}

resource "helm_release" "strimzi" {
  name             = "strimzi"
  repository       = "oci://quay.io/strimzi-helm"
  chart            = "strimzi-kafka-operator"
  version          = var.chart_versions.strimzi
  namespace        = local.kafka_namespace
  create_namespace = true
  values = [yamlencode({
    # Playlog's namespace too: the User Operator manages the KafkaUsers (and their Secrets) there.
    watchNamespaces = [local.kafka_namespace, local.namespace]
    nodeSelector    = { pool = "system" }
  })]
  depends_on = [google_container_node_pool.pools, kubernetes_namespace_v1.playlog]
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
        # No plaintext listener. Broker certificates come from the cluster CA below and name the bootstrap
        # service and each broker, so that clients verify host names (librdkafka's default).
        listeners = [
          {
            name           = "tls"
            port           = 9093
            type           = "internal"
            tls            = true
            authentication = { type = "scram-sha-512" }
            networkPolicyPeers = [
              { namespaceSelector = { matchLabels = { "kubernetes.io/metadata.name" = local.namespace } } },
              { namespaceSelector = { matchLabels = { "kubernetes.io/metadata.name" = "keda" } } },
            ]
          },
        ]
        authorization = { type = "simple" }
        config = {
          "offsets.topic.replication.factor"         = local.kafka_rf
          "transaction.state.log.replication.factor" = local.kafka_rf
          "transaction.state.log.min.isr"            = max(local.kafka_rf - 1, 1)
          "default.replication.factor"               = local.kafka_rf
          "min.insync.replicas"                      = max(local.kafka_rf - 1, 1)
          "auto.create.topics.enable"                = false
        }
      }
      # The cluster CA is Terraform's (kafka_users.tf), so that its certificate can be handed to Playlog's
      # namespace; Strimzi still issues and renews the broker certificates with it.
      clusterCa = { generateCertificateAuthority = false }
      entityOperator = {
        topicOperator = {}
        # KafkaUsers live beside the workloads, so that their Secrets are mountable there.
        userOperator = { watchedNamespace = local.namespace }
      }
    }
  })
  depends_on = [kubectl_manifest.kafka_node_pool, kubernetes_secret_v1.kafka_cluster_ca_cert, kubernetes_secret_v1.kafka_cluster_ca_key]
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
      config = contains(local.compacted_topics, each.key) ? {
        "cleanup.policy"   = "compact"
        "compression.type" = "producer"
        } : {
        "retention.ms"     = var.kafka_retention_hours * 3600000
        "compression.type" = "producer"
      }
    }
  })
  depends_on = [kubectl_manifest.kafka]
}
