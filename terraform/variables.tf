variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "environment" {
  description = "Environment name (dev, prod): a label on every resource and part of resource names."
  type        = string
  default     = "dev"
}

variable "region" {
  description = "Region for the VPC, the cluster and the BigQuery datasets' neighbourhood."
  type        = string
  default     = "europe-west1"
}

variable "zone" {
  description = "Zone of a zonal cluster (cheap, for dev). Null: a regional cluster across the region's zones."
  type        = string
  default     = null
}

variable "subnet_cidr" {
  description = "Primary range of the cluster's subnet (nodes)."
  type        = string
  default     = "10.10.0.0/20"
}

variable "pods_cidr" {
  description = "Secondary range for pods."
  type        = string
  default     = "10.20.0.0/16"
}

variable "services_cidr" {
  description = "Secondary range for services."
  type        = string
  default     = "10.30.0.0/20"
}

variable "master_cidr" {
  description = "The private control plane's /28."
  type        = string
  default     = "172.16.0.0/28"
}

variable "master_authorized_cidrs" {
  description = "Networks allowed to reach the control plane (your office or VPN), as {name, cidr}."
  type = list(object({
    name = string
    cidr = string
  }))
  default = []
}

variable "system_pool" {
  description = "Node pool for Kafka, monitoring and operators."
  type = object({
    machine_type = string
    min_nodes    = number
    max_nodes    = number
    disk_gb      = number
    spot         = bool
  })
  default = {
    machine_type = "e2-standard-4"
    min_nodes    = 1
    max_nodes    = 3
    disk_gb      = 50
    spot         = false
  }
}

variable "workload_pool" {
  description = "Node pool for Playlog's producer, consumers and vault."
  type = object({
    machine_type = string
    min_nodes    = number
    max_nodes    = number
    disk_gb      = number
    spot         = bool
  })
  default = {
    machine_type = "e2-standard-2"
    min_nodes    = 1
    max_nodes    = 6
    disk_gb      = 30
    spot         = false
  }
}

variable "kafka_replicas" {
  description = "Kafka nodes (each both broker and KRaft controller). 3 for production, 1 for dev."
  type        = number
  default     = 3
}

variable "kafka_storage_gb" {
  description = "Persistent disk per Kafka node."
  type        = number
  default     = 100
}

variable "kafka_partitions" {
  description = "Partitions per event topic: also the most consumer replicas KEDA will run."
  type        = number
  default     = 6
}

variable "kafka_retention_hours" {
  description = "How long Kafka keeps events (the window for replaying into the warehouse)."
  type        = number
  default     = 168
}

variable "kafka_ca_validity_days" {
  description = "Validity of the Kafka cluster CA that Terraform makes (kafka_users.tf); Strimzi renews broker certificates within it."
  type        = number
  default     = 1825
}

variable "dataset_prefix" {
  description = "BigQuery datasets are <prefix>_raw, <prefix>_vault and <prefix>_marts."
  type        = string
  default     = "playlog"
}

variable "bigquery_location" {
  description = "BigQuery location of the datasets."
  type        = string
  default     = "EU"
}

variable "playlog_image" {
  description = "The Playlog image (docker/Dockerfile), pushed to Artifact Registry; pin it by digest in production."
  type        = string
}

variable "producer" {
  description = "The simulated users the producer runs (0 replicas: no simulator, real events come from elsewhere)."
  type = object({
    replicas = number
    users    = number
    speed    = number
  })
  default = {
    replicas = 1
    users    = 10000
    speed    = 1
  }
}

variable "vault_every" {
  description = "Time between vault runs. Each run scans at least 10 MB per table it reads: see docs/bigquery.md for cost."
  type        = string
  default     = "10m"
}

variable "consumer_flush_interval" {
  description = "The consumer's flush interval: freshness against BigQuery query cost (one offsets MERGE per flush)."
  type        = string
  default     = "5s"
}

variable "consumer_lag_threshold" {
  description = "KEDA adds a consumer replica for every this many records of lag."
  type        = number
  default     = 50000
}

variable "resources" {
  description = "Requests and limits per Playlog container."
  type = map(object({
    cpu_request    = string
    memory_request = string
    cpu_limit      = string
    memory_limit   = string
  }))
  default = {
    producer = { cpu_request = "250m", memory_request = "256Mi", cpu_limit = "1", memory_limit = "512Mi" }
    consumer = { cpu_request = "500m", memory_request = "512Mi", cpu_limit = "2", memory_limit = "1Gi" }
    vault    = { cpu_request = "100m", memory_request = "128Mi", cpu_limit = "500m", memory_limit = "256Mi" }
  }
}

variable "chart_versions" {
  description = "Helm chart versions, pinned."
  type = object({
    strimzi               = string
    keda                  = string
    kube_prometheus_stack = string
  })
  default = {
    strimzi               = "0.48.0"
    keda                  = "2.18.0"
    kube_prometheus_stack = "77.0.0"
  }
}

variable "deletion_protection" {
  description = "Protect the cluster and datasets from terraform destroy. Turn off before tearing down."
  type        = bool
  default     = true
}
