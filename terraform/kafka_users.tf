# Who may do what on Kafka. The cluster's only listener takes TLS with SCRAM-SHA-512 logins (kafka.tf); each
# workload has its own KafkaUser with least-privilege ACLs (Strimzi's simple authorization), and the User
# Operator writes each user's password into a Secret of the same name in Playlog's namespace, which the pods
# mount as files (PLAYLOG_KAFKA_SASL_PASSWORD_FILE): no password in an environment variable or manifest.
#
#   playlog-producer  writes the four event topics, and reads offer_events (its users react to offers;
#                     no group: it assigns the partitions itself)
#   playlog-consumer  reads them and offer_events as group playlog-raw, and writes the dead-letter topic
#   playlog-offers    reads page_view_events as group playlog-offers, writes offer_events, and writes and
#                     reads its checkpoints in playlog_offers_state
#   playlog-keda      reads the group's lag: Describe on the topics and the group
#
# Topics are created here (kafka.tf), so no user holds Create: Playlog reads existing topics from metadata
# and creates only missing ones.
locals {
  event_topics   = ["listen_events", "page_view_events", "auth_events", "status_change_events"]
  raw_topics     = concat(local.event_topics, ["offer_events"])
  consumer_group = "playlog-raw"
  topic_acl      = { for t in ["offer_events", "playlog_offers_state", "page_view_events"] : t => { type = "topic", name = t, patternType = "literal" } }
  kafka_users = {
    "playlog-producer" = concat(
      [for t in local.event_topics : { resource = { type = "topic", name = t, patternType = "literal" }, operations = ["Write", "Describe"] }],
      [{ resource = local.topic_acl["offer_events"], operations = ["Read", "Describe"] }]
    )
    "playlog-offers" = [
      { resource = local.topic_acl["page_view_events"], operations = ["Read", "Describe"] },
      { resource = { type = "group", name = "playlog-offers", patternType = "literal" }, operations = ["Read"] },
      { resource = local.topic_acl["offer_events"], operations = ["Write", "Describe"] },
      { resource = local.topic_acl["playlog_offers_state"], operations = ["Read", "Write", "Describe"] },
    ]
    "playlog-consumer" = concat(
      [for t in local.raw_topics : { resource = { type = "topic", name = t, patternType = "literal" }, operations = ["Read", "Describe"] }],
      [
        { resource = { type = "group", name = local.consumer_group, patternType = "literal" }, operations = ["Read"] },
        { resource = { type = "topic", name = "dead_letter_events", patternType = "literal" }, operations = ["Write", "Describe"] },
      ]
    )
    "playlog-keda" = concat(
      [for t in local.raw_topics : { resource = { type = "topic", name = t, patternType = "literal" }, operations = ["Describe"] }],
      [{ resource = { type = "group", name = local.consumer_group, patternType = "literal" }, operations = ["Describe"] }]
    )
  }
}

resource "kubectl_manifest" "kafka_user" {
  for_each = local.kafka_users
  yaml_body = yamlencode({
    apiVersion = "kafka.strimzi.io/v1beta2"
    kind       = "KafkaUser"
    metadata = {
      name      = each.key
      namespace = local.namespace
      labels    = { "strimzi.io/cluster" = local.kafka_cluster }
    }
    spec = {
      authentication = { type = "scram-sha-512" }
      authorization  = { type = "simple", acls = each.value }
    }
  })
  depends_on = [kubectl_manifest.kafka]
}

# The cluster CA. Terraform makes it, rather than Strimzi, so that its certificate can be put into Playlog's
# namespace for the clients' ssl.ca.location (Strimzi writes its own only into the Kafka namespace). The key
# lives in Terraform's state, which is why that state is a private, versioned GCS bucket (docs/deploy-gke.md).
# Strimzi issues and renews the brokers' certificates with it; renewing the CA itself is a Terraform change
# (bump the generation annotations, as Strimzi documents for user-managed CAs).
resource "tls_private_key" "kafka_cluster_ca" {
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_self_signed_cert" "kafka_cluster_ca" {
  private_key_pem = tls_private_key.kafka_cluster_ca.private_key_pem
  subject {
    common_name  = "playlog-kafka-cluster-ca"
    organization = "playlog"
  }
  is_ca_certificate     = true
  validity_period_hours = var.kafka_ca_validity_days * 24
  early_renewal_hours   = 30 * 24
  allowed_uses          = ["cert_signing", "crl_signing"]
}

locals {
  strimzi_ca_labels = { "strimzi.io/kind" = "Kafka", "strimzi.io/cluster" = local.kafka_cluster }
}

resource "kubernetes_secret_v1" "kafka_cluster_ca_cert" {
  metadata {
    name        = "${local.kafka_cluster}-cluster-ca-cert"
    namespace   = local.kafka_namespace
    labels      = local.strimzi_ca_labels
    annotations = { "strimzi.io/ca-cert-generation" = "0" }
  }
  data       = { "ca.crt" = tls_self_signed_cert.kafka_cluster_ca.cert_pem }
  depends_on = [helm_release.strimzi]
}

resource "kubernetes_secret_v1" "kafka_cluster_ca_key" {
  metadata {
    name        = "${local.kafka_cluster}-cluster-ca"
    namespace   = local.kafka_namespace
    labels      = local.strimzi_ca_labels
    annotations = { "strimzi.io/ca-key-generation" = "0" }
  }
  data       = { "ca.key" = tls_private_key.kafka_cluster_ca.private_key_pem }
  depends_on = [helm_release.strimzi]
}

# The CA certificate (public) for Playlog's pods and KEDA's TriggerAuthentication.
resource "kubernetes_secret_v1" "kafka_ca_for_playlog" {
  metadata {
    name      = "kafka-cluster-ca"
    namespace = local.namespace
  }
  data       = { "ca.crt" = tls_self_signed_cert.kafka_cluster_ca.cert_pem }
  depends_on = [kubernetes_namespace_v1.playlog]
}

# KEDA's Kafka scaler settings that are not secret; its password comes from the playlog-keda Secret.
resource "kubernetes_secret_v1" "keda_kafka" {
  metadata {
    name      = "keda-kafka"
    namespace = local.namespace
  }
  data = {
    sasl     = "scram_sha512"
    tls      = "enable"
    username = "playlog-keda"
  }
  depends_on = [kubernetes_namespace_v1.playlog]
}
