# The datasets <prefix>_raw, <prefix>_vault and <prefix>_marts. Raw tables are created from the very DDL
# files Playlog runs (schemas/warehouse/bigquery/*.sql, partitioned by load day and clustered by user), so
# there is one schema, not two. Vault and mart tables are created by `playlog vault run` itself.
locals {
  datasets = {
    raw   = "Raw events as consumed from Kafka, one table per topic, plus the consumer's Kafka offsets."
    vault = "The Data Vault 2.0 core: hubs, links, satellites."
    marts = "Wide marts for analysts, rebuilt incrementally by the vault."
  }
  ddl_dir   = "${path.module}/../schemas/warehouse/bigquery"
  raw_table = "${var.project_id}.${var.dataset_prefix}_raw"
  ddl = {
    for f in fileset(local.ddl_dir, "*.sql") : f => replace(file("${local.ddl_dir}/${f}"), "{raw}", local.raw_table)
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

# One query job per DDL file: CREATE TABLE IF NOT EXISTS, so re-running is harmless. The job id carries a
# hash of the DDL, so a changed file runs again (jobs themselves are immutable).
resource "google_bigquery_job" "raw_ddl" {
  for_each = local.ddl
  job_id   = "playlog_ddl_${replace(trimsuffix(each.key, ".sql"), "-", "_")}_${substr(sha256(each.value), 0, 12)}"
  location = var.bigquery_location
  labels   = local.labels

  query {
    query          = each.value
    use_legacy_sql = false
    # DDL jobs must not set dispositions.
    create_disposition = ""
    write_disposition  = ""
  }

  depends_on = [google_bigquery_dataset.playlog]
}
