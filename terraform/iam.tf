# One Google service account per Playlog workload, with the least it needs, each bound to its Kubernetes
# service account through workload identity (no keys anywhere).
#   migrate:  the `playlog migrate` Job: creates the tables in the datasets Terraform made (dataEditor
#             holds bigquery.tables.create) and records them in each ledger; the one step that creates;
#   consumer: writes raw (dataEditor on <prefix>_raw) and runs jobs (the offsets MERGE); creates nothing;
#   vault:    reads raw, writes vault and marts, runs jobs; creates nothing;
#   nobody holds the project-level bigquery.datasets.create: the datasets are Terraform's (bigquery.tf).
#   producer: nothing in Google Cloud (it only talks to Kafka), so it has no Google service account.
locals {
  namespace = "playlog"
  workloads = {
    migrate = {
      display = "Playlog migrate: tables in raw, vault and marts"
      datasets = {
        raw   = "roles/bigquery.dataEditor"
        vault = "roles/bigquery.dataEditor"
        marts = "roles/bigquery.dataEditor"
      }
    }
    consumer = {
      display = "Playlog consumer: raw tables"
      datasets = {
        raw = "roles/bigquery.dataEditor"
      }
    }
    vault = {
      display = "Playlog vault: reads raw, writes vault and marts"
      datasets = {
        raw   = "roles/bigquery.dataViewer"
        vault = "roles/bigquery.dataEditor"
        marts = "roles/bigquery.dataEditor"
      }
    }
  }
  dataset_grants = merge([
    for workload, w in local.workloads : {
      for dataset, role in w.datasets : "${workload}/${dataset}" => { workload = workload, dataset = dataset, role = role }
    }
  ]...)
}

resource "google_service_account" "workload" {
  for_each     = local.workloads
  account_id   = "playlog-${each.key}-${var.environment}"
  display_name = "${each.value.display} (${var.environment})"
}

resource "google_bigquery_dataset_iam_member" "workload" {
  for_each   = local.dataset_grants
  dataset_id = google_bigquery_dataset.playlog[each.value.dataset].dataset_id
  role       = each.value.role
  member     = "serviceAccount:${google_service_account.workload[each.value.workload].email}"
}

# Running query jobs is project-level in BigQuery; jobUser lets an account run and see only its own jobs.
resource "google_project_iam_member" "job_user" {
  for_each = local.workloads
  project  = var.project_id
  role     = "roles/bigquery.jobUser"
  member   = "serviceAccount:${google_service_account.workload[each.key].email}"
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each           = local.workloads
  service_account_id = google_service_account.workload[each.key].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${local.namespace}/${each.key}]"
}
