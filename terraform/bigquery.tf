# The datasets <prefix>_raw, <prefix>_vault and <prefix>_marts, in var.bigquery_location. Their tables are
# Playlog's migrations (schemas/warehouse/bigquery/*.sql for raw, the vault's model for the rest), applied
# and recorded by the `playlog migrate` Job (manifests/playlog.yaml), so there is one schema and one ledger,
# not a second copy here; the consumer and the vault only check that they exist.
locals {
  datasets = {
    raw   = "Raw events as consumed from Kafka, one table per topic, plus the consumer's Kafka offsets."
    vault = "The Data Vault 2.0 core: hubs, links, satellites."
    marts = "Wide marts for analysts, rebuilt incrementally by the vault."
  }
}

resource "google_bigquery_dataset" "playlog" {
  #checkov:skip=CKV_GCP_81:Google-managed encryption; set default_encryption_configuration with a KMS key if your policy needs CMEK.
  for_each                   = local.datasets
  dataset_id                 = "${var.dataset_prefix}_${each.key}"
  description                = each.value
  location                   = var.bigquery_location
  labels                     = local.labels
  delete_contents_on_destroy = !var.deletion_protection
}
