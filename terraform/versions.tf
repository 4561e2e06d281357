terraform {
  required_version = ">= 1.6"

  # Remote state in a GCS bucket (versioned, created once by hand; see docs/deploy-gke.md):
  #   terraform init -backend-config=environments/backend.hcl
  backend "gcs" {}

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.10"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.35"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 2.17"
    }
    # Applies custom resources (Kafka, KafkaTopic, ScaledObject, PodMonitor) without needing their CRDs at
    # plan time, which hashicorp/kubernetes's kubernetes_manifest does.
    # The Kafka cluster CA (kafka_users.tf).
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
    kubectl = {
      source  = "alekc/kubectl"
      version = "~> 2.1"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_client_config" "current" {}

locals {
  cluster_endpoint = "https://${google_container_cluster.playlog.endpoint}"
  cluster_ca       = base64decode(google_container_cluster.playlog.master_auth[0].cluster_ca_certificate)
}

provider "kubernetes" {
  host                   = local.cluster_endpoint
  token                  = data.google_client_config.current.access_token
  cluster_ca_certificate = local.cluster_ca
}

provider "helm" {
  kubernetes {
    host                   = local.cluster_endpoint
    token                  = data.google_client_config.current.access_token
    cluster_ca_certificate = local.cluster_ca
  }
}

provider "kubectl" {
  host                   = local.cluster_endpoint
  token                  = data.google_client_config.current.access_token
  cluster_ca_certificate = local.cluster_ca
  load_config_file       = false
}
