output "cluster_name" {
  description = "The GKE cluster: gcloud container clusters get-credentials <name> --location <location>."
  value       = google_container_cluster.playlog.name
}

output "cluster_location" {
  value = google_container_cluster.playlog.location
}

output "kafka_bootstrap" {
  description = "Kafka bootstrap servers inside the cluster."
  value       = local.brokers
}

output "warehouse_url" {
  description = "The --warehouse URL Playlog uses."
  value       = local.warehouse
}

output "datasets" {
  value = { for k, d in google_bigquery_dataset.playlog : k => d.dataset_id }
}

output "service_accounts" {
  description = "Google service accounts of the consumer and the vault."
  value       = { for k, sa in google_service_account.workload : k => sa.email }
}

output "grafana" {
  description = "How to reach Grafana (the Playlog pipeline dashboard is in it)."
  value       = "kubectl -n monitoring port-forward svc/kube-prometheus-stack-grafana 3000:80"
}
